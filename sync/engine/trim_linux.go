//go:build linux && cgo

package engine

// #include <malloc.h>
import "C"

// releaseCMemory returns memory that C code (automerge-rs) freed to the
// operating system; glibc keeps freed heap pages otherwise.
func releaseCMemory() { C.malloc_trim(0) }
