package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

// env is what every command gets: the device home and the output streams.
type env struct {
	home   string
	stdout io.Writer
	stderr io.Writer
}

// command is one circlectl subcommand.
type command struct {
	name     string
	args     string // synopsis after the name
	summary  string
	register func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

var commands = []command{
	{"join", "URL INVITE | INVITE_URL [--name NAME] [--device NAME]", "enrol this device in a circle with an invite, then sync", joinCmd},
	{"log", "QUANTITY NOTE... [--kind KIND] [--to MEMBER] [--at TIME] [--unit UNIT] [--voids ID]", "log a contribution offline (QUANTITY: 2h, 1.5h, 90m or a number)", logCmd},
	{"sync", "", "exchange changes with the circle server", syncCmd},
	{"ledger", "[--mine] [--member MEMBER]", "show the ledger entries held on this device", ledgerCmd},
	{"balances", "", "show balances and signals (asks the server)", balancesCmd},
	{"credit", "AMOUNT --to MEMBER [--note NOTE] [--at TIME]", "give mutual credit offline (AMOUNT in hours: 2h, 1.5h, 90m or a number)", creditCmd},
	{"credits", "[--member MEMBER]", "show mutual-credit transfers and their flags (asks the server)", creditsCmd},
	{"scorecard", "[--period month|quarter|year]", "show the dependencies the circle reversed (asks the server)", scorecardCmd},
	{"invite", "[--device] [--expires 72h] [--no-qr]", "make an invite for a new member (or another device of yours)", inviteCmd},
	{"status", "", "show this device, its circle and unsynced changes", statusCmd},
	{"device", "revoke DEVICE_ID", "revoke one of your devices (a lost or sold phone)", deviceCmd},
	{"audit", "verify", "recompute every hash of the audit log held on this device (offline)", auditCmd},
	{"reset", "sign --reason TEXT | status", "sign a hard reset on this device (offline; sync delivers it), or show the signatures", resetCmd},
	{"propose", "KIND --title TITLE [--body TEXT] [--payload NAME=VALUE ...]", "make a proposal offline (sync delivers it); KIND: role.create, role.change, role.retire, role.assign, role.draw, charter.ratify, policy.set, mandate.grant, mandate.recall, member.admit, member.remove, federation.join, federation.leave", proposeCmd},
	{"vote", "PROPOSAL_ID yes|no|object|abstain [--reason TEXT]", "vote offline (sync delivers it); a vote is final, object blocks the proposal", voteCmd},
	{"proposals", "[--status open|passed|rejected]", "show the proposals, their votes and outcomes (asks the server)", proposalsCmd},
	{"roles", "[--status active|retired|all]", "show the rotating roles and who holds them (asks the server)", rolesCmd},
	{"draws", "[--all] | show ID", "take part in the open draws (commit, then reveal) and show them (asks the server)", drawsCmd},
	{"pair-audits", "[interview AUDIT MEMBER [--note TEXT] | session AUDIT TIME | findings AUDIT --text TEXT|--file FILE]", "show the quarterly pair-link audits; as an auditor, record an interview, set the listening session, publish the findings", pairAuditsCmd},
	{"mentorships", "", "show the yearly mentorship pairs: the most senior apprenticed to the newest", mentorshipsCmd},
	{"federation", "join HUB_URL INVITE | leave FEDERATION_ID | status | show FEDERATION_ID", "join or leave a federation (a proposal, offline; sync delivers it), or show the circle's federations (asks the server)", federationCmd},
	{"charter", "[draft | edit --text TEXT | edit --file FILE]", "show the ratified charter (asks the server), this device's copy of the draft, or replace the draft's text (offline; sync delivers it)", charterCmd},
	{"meeting", "new TITLE [--at TIME] [--id ID] | show ID | minutes ID --text TEXT [--local D]... [--external D]... | check ID [--least-heard TEXT] [--dominant MEMBER]...", "call a meeting (its facilitator is drawn), show it, record its minutes (facilitator only), or send your temperature check (asks the server)", meetingCmd},
	{"meetings", "", "show the meetings and each member's pattern in the temperature checks (asks the server)", meetingsCmd},
	{"step-down", "ROLE_ID", "step down from a role you hold (asks the server)", stepDownCmd},
	{"honours", "", "show those who handed power on: stepped down, served to the limit, rotated out (asks the server)", honoursCmd},
}

// run is circlectl: it parses args, runs one command and returns the exit
// code. Errors go to stderr as one line; a wrong command line prints the
// usage and returns 2.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("circlectl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	home := global.String("home", "", "device home directory")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "circlectl: %v\n", err)
		usage(stderr)
		return exitUsage
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "circlectl: no command given")
		usage(stderr)
		return exitUsage
	}
	if rest[0] == "help" {
		usage(stdout)
		return exitOK
	}
	var cmd *command
	for i := range commands {
		if commands[i].name == rest[0] {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "circlectl: unknown command %q\n", rest[0])
		usage(stderr)
		return exitUsage
	}

	fs := flag.NewFlagSet("circlectl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(home, "home", *home, "device home directory")
	do := cmd.register(fs)
	pos, err := parseArgs(fs, rest[1:])
	if errors.Is(err, flag.ErrHelp) {
		commandUsage(stdout, cmd, fs)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "circlectl %s: %v\n", cmd.name, err)
		commandUsage(stderr, cmd, fs)
		return exitUsage
	}
	dir, err := homeDir(*home)
	if err != nil {
		fmt.Fprintf(stderr, "circlectl: %v\n", err)
		return exitError
	}
	e := &env{home: dir, stdout: stdout, stderr: stderr}
	if err := do(ctx, e, pos); err != nil {
		if isUsage(err) {
			fmt.Fprintf(stderr, "circlectl %s: %v\n", cmd.name, err)
			commandUsage(stderr, cmd, fs)
			return exitUsage
		}
		fmt.Fprintf(stderr, "circlectl %s: %s\n", cmd.name, oneLine(err.Error()))
		return exitError
	}
	return exitOK
}

// homeDir picks the device home: --home, else $CIRCLECTL_HOME, else
// $XDG_CONFIG_HOME/circlectl, else ~/.config/circlectl.
func homeDir(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if h := os.Getenv("CIRCLECTL_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "circlectl"), nil
	}
	u, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no device home: set --home or $CIRCLECTL_HOME (%v)", err)
	}
	return filepath.Join(u, ".config", "circlectl"), nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: circlectl [--home DIR] COMMAND [ARGS]

A member's device for a circle: it keeps its own copy of the circle's
documents, works offline and syncs with the circle server.

commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
--home DIR defaults to $CIRCLECTL_HOME, else $XDG_CONFIG_HOME/circlectl,
else ~/.config/circlectl. "circlectl COMMAND -h" shows a command's flags.
`)
}

func commandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: circlectl %s %s\n%s\n", c.name, c.args, c.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
