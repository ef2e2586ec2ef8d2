package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mdp/qrterminal/v3"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
)

// openDevice opens the device in e.home with a hint when there is none.
func openDevice(e *env) (*client.Device, error) {
	d, err := client.OpenDevice(e.home)
	if errors.Is(err, client.ErrNoDevice) {
		return nil, fmt.Errorf("no device in %s; run: circlectl join URL INVITE", e.home)
	}
	return d, err
}

// openClient opens the device and its client of the circle server.
func openClient(e *env) (*client.Device, *client.Client, error) {
	d, err := openDevice(e)
	if err != nil {
		return nil, nil, err
	}
	c, err := d.Client()
	return d, c, err
}

// resolveMember turns a member's name or id, as the device last saw the
// circle, into the id; flag names the option in the error.
func resolveMember(d *client.Device, flag, nameOrID string) (string, error) {
	id, ok := d.MemberByName(nameOrID)
	if !ok {
		return "", fmt.Errorf("%s %q: no single member of that name or id in the circle as last synced (run circlectl sync?)", flag, nameOrID)
	}
	return id, nil
}

func joinCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	name := fs.String("name", "", "your name in the circle (default: your login name)")
	device := fs.String("device", "", "this device's name (default: the host name)")
	return func(ctx context.Context, e *env, args []string) error {
		var server, code string
		switch len(args) {
		case 1: // the invite URL alone, as printed by "invite" and in its QR code
			var ok bool
			if server, code, ok = splitInviteURL(args[0]); !ok {
				return usagef("want URL and INVITE, or an invite URL holding both")
			}
		case 2:
			server, code = args[0], inviteCode(args[1])
		default:
			return usagef("want URL and INVITE, got %d arguments", len(args))
		}
		if *name == "" {
			if u, err := user.Current(); err == nil {
				*name = u.Username
			}
		}
		if *device == "" {
			if h, err := os.Hostname(); err == nil {
				*device = h
			}
		}
		d, err := client.Join(ctx, e.home, server, code, *name, *device)
		if d == nil {
			return err
		}
		info := d.Info()
		circle := info.CircleID
		if info.Circle != nil && info.Circle.Name != "" {
			circle = fmt.Sprintf("%s (%s)", info.Circle.Name, info.CircleID)
		}
		fmt.Fprintf(e.stdout, "joined %s as %s (member %s, device %s)\n", circle, info.MemberName, info.MemberID, info.DeviceID)
		fmt.Fprintf(e.stdout, "device home: %s\n", e.home)
		return err
	}
}

func logCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	kind := fs.String("kind", "", "hours, lend, meal, skill or other (default: hours)")
	to := fs.String("to", "", "member (name or id) the contribution benefited")
	at := fs.String("at", "", "when it happened: RFC 3339, 2025-05-01 18:00, yesterday, -3h (default: now)")
	unit := fs.String("unit", "", `unit of the quantity (default "h" for a duration)`)
	voids := fs.String("voids", "", "id of an earlier entry this one corrects")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) < 2 {
			return usagef("want QUANTITY and NOTE, got %d arguments", len(args))
		}
		q, isDuration, err := parseQuantity(args[0])
		if err != nil {
			return usagef("%v", err)
		}
		entry := crdt.Entry{Kind: *kind, Quantity: q, Unit: *unit, Note: strings.Join(args[1:], " "), Voids: *voids}
		if entry.Kind == "" {
			entry.Kind = "hours"
		}
		if !slices.Contains(crdt.EntryKinds, entry.Kind) {
			return usagef("--kind %q: want one of %s", entry.Kind, strings.Join(crdt.EntryKinds, ", "))
		}
		if entry.Unit == "" && (isDuration || entry.Kind == "hours") {
			entry.Unit = "h"
		}
		if entry.At, err = parseWhen(*at, time.Now()); err != nil {
			return usagef("--at: %v", err)
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		if *to != "" {
			id, err := resolveMember(d, "--to", *to)
			if err != nil {
				return err
			}
			entry.Counterparty = id
		}
		entry, err = d.Log(entry)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "logged %s %s %q at %s (entry %s); run circlectl sync to share it\n",
			formatQuantity(entry.Quantity, entry.Unit), entry.Kind, entry.Note, entry.At.Local().Format("2006-01-02 15:04"), entry.ID)
		return nil
	}
}

func syncCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("sync takes no arguments")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		sum, err := d.Sync(ctx, func(p client.SyncProgress) {
			fmt.Fprintf(e.stdout, "round %d: sent %d messages (%d changes, %s), received %d messages (%d changes, %s)\n",
				p.Round, p.SentMessages, p.SentChanges, formatBytes(p.SentBytes), p.ReceivedMessages, p.ReceivedChanges, formatBytes(p.ReceivedBytes))
		})
		if sum.Rounds > 0 || err == nil {
			fmt.Fprintf(e.stdout, "synced %s in %s (%s): %s sent, %d received\n",
				plural(sum.Docs-len(sum.Failed), "document", "documents"), plural(sum.Rounds, "round", "rounds"),
				plural(sum.Requests, "request", "requests"), plural(sum.ChangesSent, "change", "changes"), sum.ChangesReceived)
		}
		for _, r := range sum.Recovered {
			fmt.Fprintf(e.stdout, "the server refused a change to %s: took a fresh copy and wrote your %s again; %d refused:\n",
				r.Doc, plural(r.Accepted+len(r.Refused), "item", "items"), len(r.Refused))
			for _, it := range r.Refused {
				fmt.Fprintf(e.stdout, "  refused: %s (%s)\n", it.What, it.Reason)
			}
		}
		return err
	}
}

func ledgerCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	mine := fs.Bool("mine", false, "only your own entries")
	member := fs.String("member", "", "only this member's entries (name or id)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("ledger takes no arguments")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		only := ""
		if *member != "" {
			id, err := resolveMember(d, "--member", *member)
			if err != nil {
				return err
			}
			only = id
		}
		entries, err := d.Entries()
		var unreadable *client.UnreadableError
		if errors.As(err, &unreadable) {
			defer fmt.Fprintf(e.stderr, "circlectl ledger: warning: %s\n", oneLine(unreadable.Error()))
		} else if err != nil {
			return err
		}
		names := map[string]string{}
		if c := d.Info().Circle; c != nil {
			for _, m := range c.Members {
				names[m.MemberID] = m.Name
			}
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WHEN\tMEMBER\tKIND\tQUANTITY\tTO\tNOTE\t")
		n := 0
		for _, le := range entries {
			if (*mine && !le.Mine) || (only != "" && le.Member != only) {
				continue
			}
			n++
			note := le.Note
			if le.Voided {
				note = "[voided] " + note
			}
			if le.Refused != "" {
				note = "[refused: " + le.Refused + "] " + note
			}
			if le.Voids != "" {
				note += " (corrects " + shortID(le.Voids) + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", le.At.Local().Format("2006-01-02 15:04"), nameOr(le.MemberName, le.Member),
				le.Kind, formatQuantity(le.Quantity, le.Unit), nameOr(names[le.Counterparty], le.Counterparty), note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s held on this device\n", plural(n, "entry", "entries"))
		return nil
	}
}

func balancesCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("balances takes no arguments")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		b, err := d.Balances(ctx)
		if err != nil {
			return err
		}
		names := map[string]string{}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "MEMBER\tGIVEN\tRECEIVED\tBALANCE\tLAST ACTIVE\tCREDIT\tLIMIT\t")
		for _, m := range b.Members {
			names[m.MemberID] = nameOr(m.Name, m.MemberID)
			last := "never"
			if m.LastActive != nil {
				last = m.LastActive.Local().Format("2006-01-02")
			}
			credit := num(m.CreditBalance) + "h"
			if m.CreditOverLimit {
				credit = "(over limit) " + credit
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t-%sh\t\n", names[m.MemberID], num(m.Given), num(m.Received), num(m.Balance), last, credit, num(m.CreditLimit))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		silent := make([]string, len(b.Signals.SilentMembers))
		for i, id := range b.Signals.SilentMembers {
			silent[i] = nameOr(names[id], id)
		}
		fmt.Fprintf(e.stdout, "signals: top contributor's share %.0f%%, gini %.2f, silent members: %s\n",
			b.Signals.TopShare*100, b.Signals.Gini, nameOr(strings.Join(silent, ", "), "none"))
		return nil
	}
}

func inviteCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	device := fs.Bool("device", false, "invite another device of yours instead of a new member")
	expires := fs.Duration("expires", 72*time.Hour, "how long the invite stays valid")
	noQR := fs.Bool("no-qr", false, "do not print the QR code")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("invite takes no arguments")
		}
		if *expires <= 0 {
			return usagef("--expires must be positive")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		inv, err := d.Invite(ctx, *device, *expires)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "invite code: %s\n", inv.Code)
		fmt.Fprintf(e.stdout, "url:         %s\n", inv.URL)
		fmt.Fprintf(e.stdout, "expires:     %s\n", inv.ExpiresAt.Local().Format("2006-01-02 15:04 MST"))
		fmt.Fprintf(e.stdout, "join with:   circlectl join %s %s\n", d.Info().ServerURL, inv.Code)
		if !*noQR && inv.URL != "" {
			qrterminal.GenerateWithConfig(inv.URL, qrterminal.Config{
				Level:          qrterminal.L,
				Writer:         e.stdout,
				HalfBlocks:     true,
				BlackChar:      qrterminal.BLACK_BLACK,
				WhiteBlackChar: qrterminal.WHITE_BLACK,
				WhiteChar:      qrterminal.WHITE_WHITE,
				BlackWhiteChar: qrterminal.BLACK_WHITE,
				QuietZone:      2,
			})
		}
		return nil
	}
}

func statusCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("status takes no arguments")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		st, err := d.Status()
		if err != nil {
			return err
		}
		i := st.Info
		if !i.Enrolled() {
			fmt.Fprintf(e.stdout, "device home %s holds a key but is not enrolled; run: circlectl join URL INVITE\n", e.home)
			return nil
		}
		circle := i.CircleID
		if i.Circle != nil && i.Circle.Name != "" {
			circle = fmt.Sprintf("%s (%s)", i.Circle.Name, i.CircleID)
		}
		last := "never"
		if !i.LastSync.IsZero() {
			last = i.LastSync.Local().Format("2006-01-02 15:04:05")
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "member\t%s (%s)\n", nameOr(i.MemberName, "?"), i.MemberID)
		fmt.Fprintf(tw, "device\t%s (%s)\n", nameOr(i.DeviceName, "?"), i.DeviceID)
		fmt.Fprintf(tw, "circle\t%s\n", circle)
		fmt.Fprintf(tw, "server\t%s\n", i.ServerURL)
		fmt.Fprintf(tw, "actor\t%s\n", i.ActorID)
		fmt.Fprintf(tw, "home\t%s\n", e.home)
		fmt.Fprintf(tw, "documents\t%s held\n", plural(st.DocsHeld, "document", "documents"))
		fmt.Fprintf(tw, "last sync\t%s\n", last)
		fmt.Fprintf(tw, "pending\t%s not yet synced\n", plural(st.Pending, "local change", "local changes"))
		return tw.Flush()
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func nameOr(name, fallback string) string {
	if name != "" {
		return name
	}
	return fallback
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// num formats a quantity with at most two decimals and no trailing zeros.
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
}

func formatQuantity(q float64, unit string) string {
	if unit == "" {
		return num(q)
	}
	if unit == "h" {
		return num(q) + "h"
	}
	return num(q) + " " + unit
}

func formatBytes(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func deviceCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 2 || args[0] != "revoke" {
			return usagef("usage: device revoke DEVICE_ID")
		}
		d, c, err := openClient(e)
		if err != nil {
			return err
		}
		rd, err := c.RevokeDevice(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked device %s at %s\n", rd.DeviceID, rd.RevokedAt.Local().Format("2006-01-02 15:04 MST"))
		if rd.DeviceID == d.Info().DeviceID {
			fmt.Fprintln(e.stdout, "that was this device: it can no longer sync")
		}
		return nil
	}
}

func auditCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 || args[0] != "verify" {
			return usagef("usage: audit verify")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		entries, err := d.AuditLog()
		if err != nil {
			return err
		}
		last := "none"
		if len(entries) > 0 {
			last = entries[len(entries)-1].Hash
		}
		fmt.Fprintf(e.stdout, "audit log verified: %d entries, last hash %s\n", len(entries), last)
		fmt.Fprintln(e.stdout, "(from this device's copy; run circlectl sync first for the newest entries)")
		return nil
	}
}

func resetCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	reason := fs.String("reason", "", "why you sign (shown to every member)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 || (args[0] != "sign" && args[0] != "status") {
			return usagef("usage: reset sign --reason TEXT | reset status")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		if args[0] == "status" {
			st, err := d.Resets(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "epoch %d: %d of %d signatures count (window %s)\n", st.Epoch, st.Signatures, st.Needed, st.Window)
			for _, p := range st.Pending {
				state := "counts"
				if !p.Counts {
					state = "does not count: " + p.Problem
				}
				fmt.Fprintf(e.stdout, "  %s  %s  %q  %s\n", p.IssuedAt.Local().Format("2006-01-02 15:04"), d.MemberName(p.Member), p.Reason, state)
			}
			for _, r := range st.Past {
				fmt.Fprintf(e.stdout, "reset of epoch %d at %s by %d members\n", r.Epoch, r.At.Local().Format("2006-01-02 15:04"), len(r.Signatures))
			}
			return nil
		}
		if *reason == "" {
			return usagef("reset sign needs --reason: say why, every member will see it")
		}
		jti, err := d.SignReset(*reason, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "signed a hard reset (statement %s); run circlectl sync to deliver it\n", jti)
		return nil
	}
}
