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
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
)

const usage = `circled — the circle server

Usage:
  circled init  --data DIR --name NAME [--policy NAME=VALUE ...] [--json]
                [--nats-url URLS [--nats-creds FILE] [--replicas N]]
  circled serve [--config FILE] [--data DIR] [--listen HOST:PORT] [--addr-file FILE]
                [--sync-always] [--tick-every DURATION] [--cpuprofile FILE] [--memory-budget SIZE] [--go-memory-limit SIZE] [--log-level LEVEL] [-v]
                [--metrics-listen HOST:PORT] [--metrics-on-api] [--trusted-proxies LIST]
                [--nats-url URLS [--nats-creds FILE] [--replicas N]
                 [--failover [--advertise URL] [--instance NAME]]]
  circled config check FILE
  circled backup --data DIR --out FILE    (while serving too)
  circled restore --data DIR --in FILE    (into a new or empty DIR)
  circled hub init|serve|invite|expel ...  (a federation hub; circled hub help)

Settings of serve come from flags, then environment variables, then the
YAML file of --config (or CIRCLED_CONFIG), then the defaults: the first
that gives a setting wins. Environment: CIRCLED_DATA, CIRCLED_LISTEN,
CIRCLED_ADDR_FILE, CIRCLED_SYNC_ALWAYS, CIRCLED_TICK_EVERY, CIRCLED_MEMORY_BUDGET,
CIRCLED_GO_MEMORY_LIMIT, CIRCLED_LOG_LEVEL, CIRCLED_METRICS_LISTEN, CIRCLED_METRICS_ON_API,
CIRCLED_TRUSTED_PROXIES, CIRCLED_NATS_URL, CIRCLED_NATS_CREDS,
CIRCLED_REPLICAS, CIRCLED_FAILOVER, CIRCLED_ADVERTISE, CIRCLED_INSTANCE; file keys: the same names in lower case without
CIRCLED_ (data, listen, …). CIRCLED_DATA stands in for --data everywhere.
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
	case "backup":
		err = runBackup(ctx, args[1:], stdout, stderr)
	case "restore":
		err = runRestore(ctx, args[1:], stdout, stderr)
	case "config":
		err = runConfig(args[1:], stdout)
	case "hub":
		err = runHub(ctx, args[1:], stdout, stderr)
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
	fs.StringVar(&cfg.NATSURL, "nats-url", os.Getenv("CIRCLED_NATS_URL"), "external NATS cluster keeping the store (as for serve)")
	fs.StringVar(&cfg.NATSCreds, "nats-creds", os.Getenv("CIRCLED_NATS_CREDS"), "NATS credentials file for --nats-url")
	replicas := envInt("CIRCLED_REPLICAS")
	fs.IntVar(&cfg.Replicas, "replicas", replicas, "JetStream replicas of the store's streams (3 on a three-node cluster)")
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
	args, cpuProfile, err := takeCPUProfile(args)
	if err != nil {
		return usageError{err}
	}
	st, err := serveSettings(args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	cfg := server.DefaultConfig()
	st.Apply(&cfg)
	cfg.Logger = newLogger(stderr, st.LogLevel)
	if limit, ok := server.GoLimit(st, os.Getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	if cpuProfile != "" {
		stop, err := startCPUProfile(cpuProfile, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.Failover {
		f, err := server.OpenFailover(ctx, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Instance %s of the circle listens at %s; it serves while it holds the circle's lease (GET /readyz says which instance serves)\n", f.Instance(), f.URL())
		<-ctx.Done()
		cfg.Logger.Info("shutting down")
		return f.Close()
	}
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

// envInt is the integer in environment variable name, 0 if unset or not
// a number (Config.Validate then refuses what is out of range).
func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
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

// takeCPUProfile takes --cpuprofile FILE (or --cpuprofile=FILE) out of
// serve's arguments: a benchmarking aid, not a setting of the circle, so
// it stays out of the settings table (server/settings.go).
func takeCPUProfile(args []string) (rest []string, file string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "cpuprofile" {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, "", errors.New("--cpuprofile needs a file")
			}
			i++
			value = args[i]
		}
		file = value
	}
	return rest, file, nil
}
