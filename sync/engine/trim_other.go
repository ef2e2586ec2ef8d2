//go:build !linux || !cgo

package engine

// releaseCMemory is a no-op where the C allocator has no malloc_trim.
func releaseCMemory() {}

// cHeap cannot be measured without glibc's mallinfo2.
func cHeap() (inUse, free int64, ok bool) { return 0, 0, false }
