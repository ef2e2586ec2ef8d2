package atomicfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/circles-coop/circles/internal/atomicfile"
)

// names lists dir's entries, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

func mustContent(t *testing.T, path string, want []byte, wantPerm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", filepath.Base(path), got, want)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("%s is %v, want a regular file", filepath.Base(path), fi.Mode().Type())
	}
	if fi.Mode().Perm() != wantPerm {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), fi.Mode().Perm(), wantPerm)
	}
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "device.json")
	if err := atomicfile.Write(path, []byte("first"), 0o600); err != nil {
		t.Fatalf("Write(new) = %v", err)
	}
	mustContent(t, path, []byte("first"), 0o600)

	if err := atomicfile.Write(path, []byte("second, longer"), 0o644); err != nil {
		t.Fatalf("Write(replace) = %v", err)
	}
	mustContent(t, path, []byte("second, longer"), 0o644)

	if err := atomicfile.Write(path, nil, 0o600); err != nil {
		t.Fatalf("Write(empty) = %v", err)
	}
	mustContent(t, path, nil, 0o600)
	if got := names(t, dir); !slices.Equal(got, []string{"device.json"}) {
		t.Errorf("directory holds %q, want only device.json", got)
	}
}

// TestWritePermIgnoresUmask: the mode is exactly perm, whatever the umask
// (a plain os.WriteFile would give 0600 for 0666 under umask 077, and
// 0666 under umask 000 for a file created 0600).
func TestWritePermIgnoresUmask(t *testing.T) {
	for _, umask := range []int{0o077, 0o022, 0} {
		old := syscall.Umask(umask)
		for _, perm := range []fs.FileMode{0o600, 0o640, 0o644, 0o666, 0o400} {
			t.Run(fmt.Sprintf("umask %03o perm %v", umask, perm), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "f")
				if err := atomicfile.Write(path, []byte("x"), perm); err != nil {
					t.Fatalf("Write = %v", err)
				}
				mustContent(t, path, []byte("x"), perm)
			})
		}
		syscall.Umask(old)
	}
}

// TestWriteFailureLeavesNothing: whichever step fails, the error comes
// back, the target is unchanged and no temporary file is left. The tests
// run as root, so an unwritable directory is simulated by paths no one
// can write: a parent that is a file, a missing parent, and a target that
// is a directory (the temporary file is made, the rename fails).
func TestWriteFailureLeavesNothing(t *testing.T) {
	t.Run("parent is a file", func(t *testing.T) {
		dir := t.TempDir()
		parent := filepath.Join(dir, "afile")
		if err := os.WriteFile(parent, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := atomicfile.Write(filepath.Join(parent, "x"), []byte("new"), 0o600)
		if !errors.Is(err, syscall.ENOTDIR) {
			t.Fatalf("Write under a file = %v, want ENOTDIR", err)
		}
		mustContent(t, parent, []byte("keep"), 0o600)
		if got := names(t, dir); !slices.Equal(got, []string{"afile"}) {
			t.Errorf("directory holds %q, want only afile", got)
		}
	})
	t.Run("parent missing", func(t *testing.T) {
		dir := t.TempDir()
		err := atomicfile.Write(filepath.Join(dir, "missing", "x"), []byte("new"), 0o600)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Write under a missing directory = %v, want ErrNotExist", err)
		}
		if got := names(t, dir); len(got) != 0 {
			t.Errorf("directory holds %q, want nothing", got)
		}
	})
	t.Run("target is a directory", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "docs")
		if err := os.Mkdir(target, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(target, "inside"), []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		var le *os.LinkError
		if err := atomicfile.Write(target, []byte("new"), 0o600); !errors.As(err, &le) {
			t.Fatalf("Write over a directory = %v, want the rename's *os.LinkError", err)
		}
		if got := names(t, dir); !slices.Equal(got, []string{"docs"}) {
			t.Errorf("directory holds %q after the failed rename, want only docs (no temporary file)", got)
		}
		mustContent(t, filepath.Join(target, "inside"), []byte("keep"), 0o600)
	})
}

// TestWriteSymlink: a symbolic link at path is replaced by a regular file;
// what it pointed to is untouched.
func TestWriteSymlink(t *testing.T) {
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	if err := os.WriteFile(target, []byte("target"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(link, []byte("new"), 0o600); err != nil {
		t.Fatalf("Write(link) = %v", err)
	}
	mustContent(t, link, []byte("new"), 0o600)
	mustContent(t, target, []byte("target"), 0o600)
}

// TestWriteConcurrent: concurrent Writes to one path leave one of the
// contents whole, and no temporary file.
func TestWriteConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	const writers = 8
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*10)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				errs <- atomicfile.Write(path, contents[i], 0o600)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Write = %v", err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(contents, func(c []byte) bool { return bytes.Equal(c, got) }) {
		t.Errorf("after concurrent writes the file holds %d bytes that are none of the contents written", len(got))
	}
	if got := names(t, dir); !slices.Equal(got, []string{"state"}) {
		t.Errorf("directory holds %q, want only state", got)
	}
}
