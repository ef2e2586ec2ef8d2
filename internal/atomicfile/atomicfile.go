// Package atomicfile replaces a file's content so that a crash or a power
// cut leaves either the old content or the new, never a mix, a truncated
// file or a file with the wrong permissions. It is for the small files a
// device or a server keeps beside its store: keys, device.json, address
// files, a device's documents and sync states.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces the file at path with data, with permissions exactly perm
// (the umask does not apply). It writes a temporary file with a unique
// name in path's directory, syncs it to disk, closes it, renames it over
// path and syncs the directory, so the rename itself is durable. On any
// failure it removes the temporary file and returns the error (an
// *fs.PathError or *os.LinkError naming the file), and path is unchanged
// — except when only the final directory sync fails: then path already
// holds data, which may not survive a power cut.
//
// If path is a symbolic link, the link itself is replaced by a regular
// file. Concurrent Writes to one path leave one of their contents whole;
// callers that need an order must serialise them.
func Write(path string, data []byte, perm fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	closed, renamed := false, false
	defer func() {
		if err == nil || renamed {
			return
		}
		if !closed {
			_ = f.Close()
		}
		_ = os.Remove(tmp)
	}()
	// Chmod before the sync, so the mode is on disk with the data.
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	closed = true
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	renamed = true
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
