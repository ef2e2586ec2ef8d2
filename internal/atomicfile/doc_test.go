package atomicfile_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/circles-coop/circles/internal/atomicfile"
)

func ExampleWrite() {
	dir, err := os.MkdirTemp("", "atomicfile-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "addr")
	if err := atomicfile.Write(path, []byte("127.0.0.1:8080\n"), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))
	// Output: 127.0.0.1:8080
}
