package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

// drawsCmd takes part in the circle's open commit–reveal draws (commits
// in the commit phase, reveals in the reveal phase) and shows them; with
// "show ID" it shows one draw with its commitments, reveals and result.
func drawsCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	all := fs.Bool("all", false, "also list closed draws")
	return func(ctx context.Context, e *env, args []string) error {
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		if len(args) == 2 && args[0] == "show" {
			w, err := d.Draw(ctx, args[1])
			if err != nil {
				return err
			}
			printDraw(e, d, *w, true)
			return nil
		}
		if len(args) != 0 {
			return usagef("usage: draws [--all] | draws show ID")
		}
		acts, err := d.TakePartInDraws(ctx)
		if err != nil {
			return err
		}
		failed := 0
		for _, a := range acts {
			if a.Err != nil {
				failed++
				fmt.Fprintf(e.stdout, "%s (%s): %v\n", a.Draw, a.Phase, a.Err)
			} else if a.Action != "done" {
				fmt.Fprintf(e.stdout, "%s (%s): %s\n", a.Draw, a.Phase, a.Action)
			}
		}
		status := "open"
		if *all {
			status = ""
		}
		list, err := d.Draws(ctx, status)
		if err != nil {
			return err
		}
		if len(list.Draws) == 0 {
			fmt.Fprintln(e.stdout, "no open draws")
		}
		for _, w := range list.Draws {
			printDraw(e, d, w, false)
		}
		if failed > 0 {
			return fmt.Errorf("%d draws could not be taken part in", failed)
		}
		return nil
	}
}

func printDraw(e *env, d *client.Device, w wire.Draw, long bool) {
	t := func(x time.Time) string { return x.Local().Format("2006-01-02 15:04") }
	fmt.Fprintf(e.stdout, "%s  %q  phase %s; commit by %s, reveal by %s; %d committed, %d revealed\n",
		w.ID, w.Purpose, w.Phase, t(w.CommitBy), t(w.RevealBy), len(w.Commitments), len(w.Reveals))
	if r := w.Result; r != nil {
		names := make([]string, len(r.Picked))
		for i, m := range r.Picked {
			names[i] = d.MemberName(m)
		}
		how := fmt.Sprintf("from %d reveals and the server's value", len(r.Revealed))
		if r.ServerOnly {
			how = "from the server's value alone (no device revealed)"
		}
		if w.Picks == 0 {
			// A role's or the facilitators' round: its seed picks among
			// those eligible when it is used (role.drawn, meeting.created).
			fmt.Fprintf(e.stdout, "    seed %s, %s\n", r.Seed, how)
		} else {
			fmt.Fprintf(e.stdout, "    picked %s, %s; seed %s\n", strings.Join(names, ", "), how, r.Seed)
		}
		if len(r.Withheld) > 0 {
			ws := make([]string, len(r.Withheld))
			for i, m := range r.Withheld {
				ws[i] = d.MemberName(m)
			}
			fmt.Fprintf(e.stdout, "    committed but did not reveal: %s\n", strings.Join(ws, ", "))
		}
	}
	if long {
		fmt.Fprintf(e.stdout, "    server commitment %s\n", w.ServerCommitment)
		for _, c := range w.Commitments {
			fmt.Fprintf(e.stdout, "    commitment  %s  %s  %s\n", d.MemberName(c.Member), c.Commitment, t(c.At))
		}
		for _, r := range w.Reveals {
			fmt.Fprintf(e.stdout, "    reveal      %s  %s  %s\n", d.MemberName(r.Member), r.Value, t(r.At))
		}
	}
}

// pairAuditsCmd shows the pair-link audits, and lets an auditor record an
// interview, set the listening session or publish the findings.
func pairAuditsCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	note := fs.String("note", "", "a short note on the interview (public to the circle)")
	text := fs.String("text", "", "the findings: a map of cliques and blockages")
	file := fs.String("file", "", "read the findings from FILE")
	return func(ctx context.Context, e *env, args []string) error {
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		var out *wire.PairAudit
		switch {
		case len(args) == 0:
			list, err := d.PairAudits(ctx)
			if err != nil {
				return err
			}
			if len(list.PairAudits) == 0 {
				fmt.Fprintln(e.stdout, "no pair audits yet (one opens each quarter)")
			}
			for _, p := range list.PairAudits {
				printPairAudit(e, d, p)
			}
			return nil
		case len(args) == 3 && args[0] == "interview":
			member, err := resolveMember(d, "MEMBER", args[2])
			if err != nil {
				return err
			}
			out, err = d.RecordInterview(ctx, args[1], member, *note)
			if err != nil {
				return err
			}
		case len(args) == 3 && args[0] == "session":
			at, err := time.Parse(time.RFC3339, args[2])
			if err != nil {
				return usagef("TIME must be an RFC 3339 time, e.g. 2027-02-02T19:00:00+01:00")
			}
			out, err = d.SetListeningSession(ctx, args[1], wire.PairSessionRequest{At: at})
			if err != nil {
				return err
			}
		case len(args) == 2 && args[0] == "findings":
			body := *text
			if *file != "" {
				b, err := os.ReadFile(*file)
				if err != nil {
					return err
				}
				body = string(b)
			}
			if body == "" {
				return usagef("findings needs --text TEXT or --file FILE")
			}
			out, err = d.PublishFindings(ctx, args[1], body)
			if err != nil {
				return err
			}
		default:
			return usagef("usage: pair-audits | pair-audits interview AUDIT MEMBER [--note TEXT] | pair-audits session AUDIT TIME | pair-audits findings AUDIT --text TEXT|--file FILE")
		}
		printPairAudit(e, d, *out)
		return nil
	}
}

func printPairAudit(e *env, d *client.Device, p wire.PairAudit) {
	fmt.Fprintf(e.stdout, "%s  quarter %s  %s\n", p.ID, p.Quarter, p.Status)
	if p.Status == "drawing" {
		fmt.Fprintf(e.stdout, "    auditors being drawn (draw %s; run circlectl draws to take part)\n", p.Draw)
		return
	}
	for _, a := range p.Auditors {
		todo := make([]string, 0, len(p.Remaining[a]))
		for _, m := range p.Remaining[a] {
			todo = append(todo, d.MemberName(m))
		}
		still := "has interviewed everyone"
		if len(todo) > 0 {
			still = "still to interview: " + strings.Join(todo, ", ")
		}
		fmt.Fprintf(e.stdout, "    auditor %s: %s\n", d.MemberName(a), still)
	}
	if p.SessionAt != nil {
		fmt.Fprintf(e.stdout, "    listening session %s\n", p.SessionAt.Local().Format("2006-01-02 15:04"))
	}
	if p.Findings != "" {
		fmt.Fprintf(e.stdout, "    findings:\n")
		for _, l := range strings.Split(p.Findings, "\n") {
			fmt.Fprintf(e.stdout, "      %s\n", l)
		}
	}
}

// mentorshipsCmd shows the yearly mentorship pairs.
func mentorshipsCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("mentorships takes no arguments")
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		m, err := d.Mentorships(ctx)
		if err != nil {
			return err
		}
		if len(m.Rounds) == 0 {
			fmt.Fprintln(e.stdout, "no mentorships yet (pairs are made on each anniversary of the circle)")
		}
		for _, r := range m.Rounds {
			fmt.Fprintf(e.stdout, "%s (paired %s)\n", r.Year, r.At.Local().Format("2006-01-02"))
			for _, p := range r.Pairs {
				fmt.Fprintf(e.stdout, "    %s mentors %s\n", d.MemberName(p.Mentor), d.MemberName(p.Apprentice))
			}
			for _, u := range r.Unpaired {
				fmt.Fprintf(e.stdout, "    %s not paired this year\n", d.MemberName(u))
			}
		}
		return nil
	}
}
