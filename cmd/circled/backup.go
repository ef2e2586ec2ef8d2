package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/circles-coop/circles/server"
)

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", stderr)
	data := fs.String("data", os.Getenv("CIRCLED_DATA"), "the circle's data directory")
	out := fs.String("out", "", "the backup file to write (replaced only by a whole, verified backup)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *data == "" || *out == "" || fs.NArg() > 0 {
		return usageError{errors.New("--data and --out are required")}
	}
	start := time.Now()
	info, err := server.BackupFile(ctx, *data, *out, newLogger(stderr, slog.LevelWarn))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Backed up circle %q (id %s) to %s: %d bytes in %s, taken %s.\n",
		info.Name, info.CircleID, *out, info.Bytes, time.Since(start).Round(time.Millisecond), viaText(info.Via))
	return nil
}

func viaText(via string) string {
	if via == "server" {
		return "through the running server"
	}
	return "from the store (the circle was not running)"
}

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("restore", stderr)
	data := fs.String("data", os.Getenv("CIRCLED_DATA"), "the new circle data directory (must not exist or be empty)")
	in := fs.String("in", "", "the backup file")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *data == "" || *in == "" || fs.NArg() > 0 {
		return usageError{errors.New("--data and --in are required")}
	}
	start := time.Now()
	info, err := server.Restore(ctx, *data, *in, newLogger(stderr, slog.LevelWarn))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Restored circle %q (id %s), backed up %s, into %s in %s.\n",
		info.Name, info.CircleID, info.TakenAt.Format(time.RFC3339), *data, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "Serve it:   circled serve --data %s\n", *data)
	return nil
}
