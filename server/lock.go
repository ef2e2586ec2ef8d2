package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile, in the data directory, is held (flock, exclusive) by the one
// process that has the circle's store open: a server, init, restore or an
// offline backup. nats-server itself does not lock its store directory,
// and two servers on one directory would corrupt it.
const lockFile = "circled.lock"

// ErrLocked is returned when another process has the data directory open
// (serving it, or creating, restoring or backing it up).
var ErrLocked = errors.New("another circled process has this data directory open")

// lockData takes the data directory's lock without waiting. The lock ends
// with the process, so a killed server leaves none behind.
func lockData(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
