//go:build unix

package store_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) this process has used.
// The embedded server runs in the same process, so it counts both sides.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
