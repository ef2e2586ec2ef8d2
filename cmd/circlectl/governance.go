package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func proposeCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	title := fs.String("title", "", "a short title every member will see (required)")
	body := fs.String("body", "", "the proposal's text")
	var payload multiFlag
	fs.Var(&payload, "payload", "a payload field as NAME=VALUE (repeatable); e.g. name=treasurer term=2160h term_limit=2, member=Alice")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("want the proposal's KIND (%s)", strings.Join(crdt.ProposalKinds, ", "))
		}
		if !slices.Contains(crdt.ProposalKinds, args[0]) {
			return usagef("kind %q: want one of %s", args[0], strings.Join(crdt.ProposalKinds, ", "))
		}
		if strings.TrimSpace(*title) == "" {
			return usagef("propose needs --title: say in a few words what it is about")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		fields, err := parsePayload(payload, d, time.Now())
		if err != nil {
			return usagef("%v", err)
		}
		p, err := d.Propose(crdt.Proposal{Kind: args[0], Title: *title, Body: *body, Payload: fields})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "proposed %s %q (proposal %s); run circlectl sync to deliver it\n", p.Kind, p.Title, p.ID)
		return nil
	}
}

// parsePayload turns NAME=VALUE pairs into a proposal payload: term_limit
// is a whole number, a member may be given by name, a deadline as a date;
// everything else is a string.
func parsePayload(pairs []string, d *client.Device, now time.Time) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--payload %q: want NAME=VALUE", kv)
		}
		switch k {
		case "term_limit":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("--payload term_limit=%s: want a whole number", v)
			}
			out[k] = n
		case "member":
			id, err := resolveMember(d, "--payload member", v)
			if err != nil {
				return nil, err
			}
			out[k] = id
		case "deadline":
			t, err := parseWhen(v, now)
			if err != nil {
				return nil, fmt.Errorf("--payload deadline: %v", err)
			}
			out[k] = t.UTC().Format(time.RFC3339)
		default:
			out[k] = v
		}
	}
	return out, nil
}

func voteCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	reason := fs.String("reason", "", "why you vote so (every member will see it)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 2 {
			return usagef("want PROPOSAL_ID and a choice (%s)", strings.Join(crdt.VoteChoices, ", "))
		}
		if !slices.Contains(crdt.VoteChoices, args[1]) {
			return usagef("choice %q: want one of %s", args[1], strings.Join(crdt.VoteChoices, ", "))
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		v, err := d.Vote(args[0], args[1], *reason, time.Now())
		if err != nil {
			return err
		}
		note := ""
		if v.Choice == crdt.ChoiceObject {
			note = " (a standing objection: it blocks the proposal)"
		}
		fmt.Fprintf(e.stdout, "voted %s on %s%s; a vote is final; run circlectl sync to deliver it\n", v.Choice, v.Proposal, note)
		return nil
	}
}

func proposalsCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	status := fs.String("status", "", "only open, passed, rejected or cancelled proposals")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("proposals takes no arguments")
		}
		d, c, err := openClient(e)
		if err != nil {
			return err
		}
		list, err := c.Proposals(ctx, *status)
		if err != nil {
			return err
		}
		me := d.Info().MemberID
		for _, p := range list.Proposals {
			fmt.Fprintf(e.stdout, "%s  %s  %-8s %q by %s\n", p.ID, p.Kind, p.Status, p.Title, d.MemberName(p.Author))
			switch p.Status {
			case "open":
				mine := "you have not voted"
				if v, ok := p.Votes[me]; ok {
					mine = "you voted " + v.Choice
				}
				fmt.Fprintf(e.stdout, "    %d yes, %d no, %d object, %d abstain of %d members (%d needed); closes %s; %s\n",
					p.Tally.Yes, p.Tally.No, p.Tally.Object, p.Tally.Abstain, p.Tally.Eligible, p.Tally.Needed, p.ClosesAt.Local().Format("2006-01-02 15:04"), mine)
			default:
				fmt.Fprintf(e.stdout, "    %s\n", p.Reason)
			}
			if len(p.Payload) > 0 {
				keys := make([]string, 0, len(p.Payload))
				for k := range p.Payload {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				parts := make([]string, len(keys))
				for i, k := range keys {
					parts[i] = fmt.Sprintf("%s=%v", k, p.Payload[k])
				}
				fmt.Fprintf(e.stdout, "    %s\n", strings.Join(parts, " "))
			}
			if inv := p.Invite; inv != nil {
				if inv.UsedAt != nil {
					fmt.Fprintf(e.stdout, "    your invite for %s was used %s\n", inv.Name, inv.UsedAt.Local().Format("2006-01-02 15:04"))
				} else {
					fmt.Fprintf(e.stdout, "    invite code for %s: %s (one use, until %s); hand it over in person: circlectl join %s %s\n",
						inv.Name, inv.Code, inv.ExpiresAt.Local().Format("2006-01-02 15:04"), c.BaseURL(), inv.Code)
				}
			}
		}
		fmt.Fprintf(e.stdout, "%s\n", plural(len(list.Proposals), "proposal", "proposals"))
		return nil
	}
}

func rolesCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	status := fs.String("status", "", "active (the default), retired or all")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("roles takes no arguments")
		}
		d, c, err := openClient(e)
		if err != nil {
			return err
		}
		list, err := c.Roles(ctx, *status)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROLE\tHOLDER\tTERM\tUNTIL\tTERMS\tID")
		for _, r := range list.Roles {
			holder, until := "vacant", "-"
			if r.Holder != "" {
				holder = d.MemberName(r.Holder)
			}
			if r.TermEnd != nil {
				until = r.TermEnd.Local().Format("2006-01-02")
			}
			if r.Status == "retired" && r.RetiredAt != nil {
				holder, until = "retired", r.RetiredAt.Local().Format("2006-01-02")
			}
			if r.PendingDraw != nil { // assigned when its draw closes
				holder += " (being drawn: circlectl draws show " + r.PendingDraw.Draw + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d of %d\t%s\n", r.Name, holder, r.Term, until, r.TermsServed, r.TermLimit, r.ID)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", plural(len(list.Roles), "role", "roles"))
		return nil
	}
}

func charterCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	text := fs.String("text", "", "with edit: the draft's new text (the whole of it)")
	file := fs.String("file", "", "with edit: read the draft's new text from this file")
	return func(ctx context.Context, e *env, args []string) error {
		sub := ""
		if len(args) > 0 {
			sub = args[0]
		}
		if len(args) > 1 || (sub != "" && sub != "draft" && sub != "edit") {
			return usagef("want no argument (the ratified charter), draft or edit")
		}
		if sub != "edit" && (*text != "" || *file != "") {
			return usagef("--text and --file go with charter edit")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		switch sub {
		case "draft":
			draft, err := d.CharterDraft()
			if err != nil {
				return err
			}
			printText(e, "charter draft (this device's copy)", draft.Principles, draft.Text)
			return nil
		case "edit":
			body, err := draftInput(*text, *file)
			if err != nil {
				return err
			}
			changed, err := d.EditCharterDraft(body)
			if err != nil {
				return err
			}
			if !changed {
				fmt.Fprintln(e.stdout, "the charter draft already says that; nothing written")
				return nil
			}
			fmt.Fprintf(e.stdout, "edited the charter draft (%s); run circlectl sync to deliver it\n", plural(utf8.RuneCountInString(body), "character", "characters"))
			return nil
		}
		c, err := d.Client()
		if err != nil {
			return err
		}
		ch, err := c.Charter(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: charter %s, version %d\n", ch.Name, ch.Status, ch.Version)
		if ch.RatifiedAt != nil {
			fmt.Fprintf(e.stdout, "ratified %s", ch.RatifiedAt.Local().Format("2006-01-02 15:04"))
			if ch.ExpiresAt != nil {
				fmt.Fprintf(e.stdout, ", expires %s", ch.ExpiresAt.Local().Format("2006-01-02 15:04"))
			}
			fmt.Fprintln(e.stdout)
		}
		if ch.RenewalDue {
			fmt.Fprintln(e.stdout, "due for ratification: edit the draft (circlectl charter edit) and vote on charter.ratify")
		}
		if ch.Purpose != "" {
			fmt.Fprintf(e.stdout, "purpose: %s\n", ch.Purpose)
		}
		fmt.Fprintln(e.stdout, "policies:")
		for _, k := range slices.Sorted(maps.Keys(ch.Policies)) {
			fmt.Fprintf(e.stdout, "  %-24s %s\n", k, ch.Policies[k])
		}
		printText(e, "charter", ch.Principles, ch.Text)
		return nil
	}
}

// printText prints a charter's principles and text.
func printText(e *env, what string, principles []string, text string) {
	if len(principles) > 0 {
		fmt.Fprintln(e.stdout, "principles:")
		for i, p := range principles {
			fmt.Fprintf(e.stdout, "  %d. %s\n", i+1, p)
		}
	}
	if strings.TrimSpace(text) == "" {
		fmt.Fprintf(e.stdout, "the %s has no text yet\n", what)
		return
	}
	fmt.Fprintf(e.stdout, "text:\n%s\n", strings.TrimRight(text, "\n"))
}

// draftInput is the new draft text given by --text or --file.
func draftInput(text, file string) (string, error) {
	switch {
	case text != "" && file != "":
		return "", usagef("give the new text with --text or --file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		return string(b), err
	case text == "":
		return "", usagef("charter edit needs the new text: --text TEXT or --file FILE")
	}
	return text, nil
}
