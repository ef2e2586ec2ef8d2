//go:build !linux || !cgo

package engine

// releaseCMemory is a no-op where the C allocator has no malloc_trim.
func releaseCMemory() {}
