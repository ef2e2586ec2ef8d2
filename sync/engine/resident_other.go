//go:build !linux

package engine

// residentBytes is not read outside Linux: the watch on memory outside
// the Go heap is off there.
func residentBytes() int64 { return 0 }
