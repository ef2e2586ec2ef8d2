package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
)

const usage = `circled — the circle server

Usage:
  circled init  --data DIR --name NAME [--policy NAME=VALUE ...] [--json]
  circled serve --data DIR [--listen HOST:PORT] [--addr-file FILE] [--sync-always]
                [--cpuprofile FILE]

Environment: CIRCLED_DATA and CIRCLED_LISTEN stand in for --data and --listen.
`

// run is circled's whole program; main only wires the process to it, and
// tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	var err error
	switch args[0] {
	case "init":
		err = runInit(ctx, args[1:], stdout, stderr)
	case "serve":
		err = runServe(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "circled: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "circled %s: %v\n\n%s", args[0], err, usage)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "circled %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

type policyFlags struct{ p crdt.Policies }

func (f *policyFlags) String() string { return "" }
func (f *policyFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	return f.p.Set(strings.TrimSpace(name), strings.TrimSpace(value))
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	fs := newFlags("init", stderr)
	fs.StringVar(&cfg.DataDir, "data", os.Getenv("CIRCLED_DATA"), "the circle's data directory")
	name := fs.String("name", "", "the circle's name")
	asJSON := fs.Bool("json", false, "print {\"circle_id\", \"invite\"} as the only output")
	pol := &policyFlags{p: crdt.DefaultPolicies()}
	fs.Var(pol, "policy", "a founding charter policy NAME=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if cfg.DataDir == "" || *name == "" {
		return usageError{errors.New("--data and --name are required")}
	}
	cfg.Logger = newLogger(stderr, slog.LevelWarn)
	res, err := server.Init(ctx, cfg, *name, pol.p)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "Created circle %q (id %s) in %s.\n\n", *name, res.CircleID, cfg.DataDir)
	fmt.Fprintf(stdout, "Founder invite (one use, valid 7 days):\n\n    %s\n\n", res.Invite)
	fmt.Fprintf(stdout, "Serve it:   circled serve --data %s --listen 127.0.0.1:8080\n", cfg.DataDir)
	fmt.Fprintf(stdout, "Then join:  circlectl join http://127.0.0.1:8080 %s\n", res.Invite)
	return nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := server.DefaultConfig()
	fs := newFlags("serve", stderr)
	fs.StringVar(&cfg.DataDir, "data", os.Getenv("CIRCLED_DATA"), "the circle's data directory")
	listen := os.Getenv("CIRCLED_LISTEN")
	if listen == "" {
		listen = cfg.Listen
	}
	fs.StringVar(&cfg.Listen, "listen", listen, "HTTP address; port 0 picks a free port")
	fs.StringVar(&cfg.AddrFile, "addr-file", "", "write host:port here once ready")
	fs.BoolVar(&cfg.SyncAlways, "sync-always", false, "fsync every store write (survives power loss; slower)")
	fs.Int64Var(&cfg.MemoryBudget, "memory-budget", cfg.MemoryBudget, "bytes of loaded documents before idle ones are evicted")
	verbose := fs.Bool("v", false, "log debug messages")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (for benchmarks)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if cfg.DataDir == "" {
		return usageError{errors.New("--data is required")}
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = newLogger(stderr, level)
	s, err := server.Open(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Circle %s is served at %s\n", s.CircleID(), s.URL())
	fmt.Fprintf(stdout, "Join with the founder invite from `circled init`, or one from `circlectl invite`:\n")
	fmt.Fprintf(stdout, "    circlectl join %s INVITE\n", s.URL())
	<-ctx.Done()
	cfg.Logger.Info("shutting down")
	return s.Close()
}

// newLogger logs JSON unless w is a terminal.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// startCPUProfile profiles the process into path until the returned
// function is called (at shutdown, after the server closed).
func startCPUProfile(path string, stderr io.Writer) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "circled: cpu profile: %v\n", err)
		}
	}, nil
}
