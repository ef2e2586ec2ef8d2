//go:build linux && cgo

package engine

// #include <malloc.h>
import "C"

// releaseCMemory returns memory that C code (automerge-rs) freed to the
// operating system; glibc keeps freed heap pages otherwise.
func releaseCMemory() { C.malloc_trim(0) }

// cHeap measures the C heap (glibc's mallinfo2, over all arenas): inUse
// is what C code holds allocated now (uordblks; with automerge-rs that
// is its documents, sync states and results), free what malloc keeps
// freed but has not returned to the operating system (fordblks). Large
// allocations served by mmap count in neither: they go back to the
// system when freed. ok is false where it cannot be measured.
func cHeap() (inUse, free int64, ok bool) {
	mi := C.mallinfo2()
	return int64(mi.uordblks) + int64(mi.hblkhd), int64(mi.fordblks), true
}

// cArenas caps glibc's malloc arenas. automerge-rs allocates through
// malloc from whichever OS thread a cgo call runs on, and glibc gives
// busy threads arenas of their own (up to 8 per core); each keeps its
// freed pages, so the resident set grows with the number of threads that
// ever touched a document. Two arenas are enough for a small server.
const cArenas = 2

// cMmapThreshold fixes the size from which glibc serves an allocation
// with its own mapping, returned whole to the system when freed. By
// default glibc raises the threshold each time such a block is freed (up
// to 32 MiB), after which automerge's large buffers (a document's
// columns, a save) come from the heap and leave holes in it that
// malloc_trim cannot return while smaller blocks live around them.
// Setting it keeps it where it is.
const cMmapThreshold = 128 << 10

func init() {
	C.mallopt(C.M_ARENA_MAX, cArenas)
	C.mallopt(C.M_MMAP_THRESHOLD, cMmapThreshold)
}
