package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCPUProfile: --cpuprofile writes a pprof file (gzip-compressed
// protobuf) once stopped, and a path that cannot be created is an error
// before anything starts.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pprof")
	var stderr bytes.Buffer
	stop, err := startCPUProfile(path, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Errorf("the profile starts with % x, want a gzip stream", b[:min(len(b), 4)])
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}

	if _, err := startCPUProfile(filepath.Join(dir, "missing", "cpu.pprof"), &stderr); err == nil || !strings.Contains(err.Error(), "cpu profile") {
		t.Errorf("a profile in a missing directory: err = %v, want a cpu profile error", err)
	}
}
