package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/circles-coop/circles/federation/hub"
)

const hubUsage = `circled hub — a federation hub (API.md "Federation")

Usage:
  circled hub init   --data DIR --name NAME [--json]
  circled hub serve  --data DIR --listen ADDR --leafnode-listen ADDR [--addr-file F] [--log-level LEVEL]
  circled hub invite --data DIR [--expires-in 72h] [--json]    (also while the hub serves)
  circled hub expel  --data DIR CIRCLE_ID                       (at once, while the hub serves)

CIRCLED_HUB_DATA stands in for --data.
`

// runHub runs `circled hub ...`.
func runHub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("want hub init, serve, invite or expel (see: circled hub help)")}
	}
	switch args[0] {
	case "init":
		return runHubInit(args[1:], stdout, stderr)
	case "serve":
		return runHubServe(ctx, args[1:], stdout, stderr)
	case "invite":
		return runHubInvite(ctx, args[1:], stdout, stderr)
	case "expel":
		return runHubExpel(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, hubUsage)
		return nil
	}
	return usageError{fmt.Errorf("unknown hub command %q: want init, serve, invite or expel (see: circled hub help)", args[0])}
}

func runHubInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hub init", stderr)
	data := fs.String("data", os.Getenv("CIRCLED_HUB_DATA"), "the hub's data directory")
	name := fs.String("name", "", "the federation's name")
	asJSON := fs.Bool("json", false, "print {\"federation_id\", \"invite\"} as the only output")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *data == "" || *name == "" || fs.NArg() > 0 {
		return usageError{errors.New("--data and --name are required")}
	}
	res, err := hub.Init(*data, *name, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "Created federation %q (id %s) in %s.\n", *name, res.FederationID, *data)
	fmt.Fprintf(stdout, "One-time join invite (valid until %s):\n\n  %s\n\n", res.ExpiresAt.Format(time.RFC3339), res.Invite)
	fmt.Fprintf(stdout, "Serve it:  circled hub serve --data %s --listen 0.0.0.0:7480 --leafnode-listen 0.0.0.0:7422\n", *data)
	fmt.Fprintln(stdout, "A circle joins by a federation.join proposal: circlectl federation join http://HUB:7480 INVITE")
	return nil
}

func runHubServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hub serve", stderr)
	cfg := hub.Config{}
	fs.StringVar(&cfg.DataDir, "data", os.Getenv("CIRCLED_HUB_DATA"), "the hub's data directory")
	fs.StringVar(&cfg.Listen, "listen", "", "the hub's HTTP API address (port 0: any free port)")
	fs.StringVar(&cfg.LeafListen, "leafnode-listen", "", "the NATS leaf node listener's address (port 0: any free port)")
	fs.StringVar(&cfg.AddrFile, "addr-file", "", "a file that receives {\"http\", \"leafnode\"} once ready")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if cfg.DataDir == "" || cfg.Listen == "" || cfg.LeafListen == "" || fs.NArg() > 0 {
		return usageError{errors.New("--data, --listen and --leafnode-listen are required")}
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)}
	}
	cfg.Logger = newLogger(stderr, lv)
	h, err := hub.Open(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cfg.Logger.Info("hub shutting down")
	return h.Close()
}

func runHubInvite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hub invite", stderr)
	data := fs.String("data", os.Getenv("CIRCLED_HUB_DATA"), "the hub's data directory")
	ttl := fs.Duration("expires-in", hub.DefaultInviteTTL, "how long the invite stays valid")
	asJSON := fs.Bool("json", false, "print {\"invite\", \"expires_at\"} as the only output")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *data == "" || fs.NArg() > 0 {
		return usageError{errors.New("--data is required")}
	}
	inv, err := hub.MakeInvite(ctx, *data, *ttl, time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(inv)
	}
	fmt.Fprintf(stdout, "One-time join invite (valid until %s):\n\n  %s\n", inv.ExpiresAt.Format(time.RFC3339), inv.Invite)
	return nil
}

func runHubExpel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hub expel", stderr)
	data := fs.String("data", os.Getenv("CIRCLED_HUB_DATA"), "the hub's data directory")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *data == "" || fs.NArg() != 1 {
		return usageError{errors.New("--data and one CIRCLE_ID are required")}
	}
	if err := hub.ExpelCircle(ctx, *data, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Expelled circle %s: its credentials are revoked and its link is closed.\n", fs.Arg(0))
	return nil
}
