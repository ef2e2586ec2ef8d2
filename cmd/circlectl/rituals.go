package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

// The rituals' commands (issue 10): meetings with drawn facilitation,
// minutes, temperature checks, stepping down and honours. All of them
// ask the server.

func meetingCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	at := fs.String("at", "", "with new: when the meeting takes place: RFC 3339 or 2025-05-01 18:00 (default: now)")
	id := fs.String("id", "", "with new: the meeting's id (default: a new uuid; the same id again is a safe retry)")
	text := fs.String("text", "", "with minutes: the minutes' text")
	var local, external, dominant multiFlag
	fs.Var(&local, "local", "with minutes: a decision the circle made alone (repeatable)")
	fs.Var(&external, "external", "with minutes: a decision depending on an outside authority (repeatable)")
	leastHeard := fs.String("least-heard", "", "with check: the moment you felt least heard")
	fs.Var(&dominant, "dominant", "with check: a member (name or id) who dominated (repeatable)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 {
			return usagef("want new TITLE, show ID, minutes ID, or check ID")
		}
		d, c, err := openClient(e)
		if err != nil {
			return err
		}
		switch sub := args[0]; {
		case sub == "new" && len(args) >= 2:
			when, err := parseWhen(*at, time.Now())
			if err != nil {
				return usagef("--at: %v", err)
			}
			if *id == "" {
				*id = uuid.NewString()
			}
			m, err := c.CreateMeeting(ctx, wire.MeetingRequest{ID: *id, Title: strings.Join(args[1:], " "), At: when})
			if err != nil {
				return err
			}
			printMeeting(e, d, m)
			return nil
		case sub == "show" && len(args) == 2:
			m, err := c.Meeting(ctx, args[1])
			if err != nil {
				return err
			}
			printMeeting(e, d, m)
			return nil
		case sub == "minutes" && len(args) == 2:
			if *text == "" {
				return usagef("minutes needs --text")
			}
			req := wire.MinutesRequest{Text: *text, Decisions: []wire.Decision{}}
			for _, s := range local {
				req.Decisions = append(req.Decisions, wire.Decision{Text: s, Tag: "local"})
			}
			for _, s := range external {
				req.Decisions = append(req.Decisions, wire.Decision{Text: s, Tag: "external"})
			}
			m, err := c.RecordMinutes(ctx, args[1], req)
			if err != nil {
				return err
			}
			printMeeting(e, d, m)
			return nil
		case sub == "check" && len(args) == 2:
			req := wire.CheckRequest{LeastHeard: *leastHeard, Dominant: []string{}}
			for _, s := range dominant {
				id, err := resolveMember(d, "--dominant", s)
				if err != nil {
					return err
				}
				req.Dominant = append(req.Dominant, id)
			}
			r, err := c.CheckIn(ctx, args[1], req)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "checked in for meeting %s: %s so far, check %s; nobody will see whom you named, only the counts\n", r.Meeting, plural(r.CheckedIn, "member", "members"), r.Status)
			return nil
		default:
			return usagef("want new TITLE, show ID, minutes ID --text TEXT, or check ID")
		}
	}
}

func printMeeting(e *env, d *client.Device, m *wire.Meeting) {
	fmt.Fprintf(e.stdout, "meeting %d %q at %s (id %s)\n", m.Seq, m.Title, m.At.Local().Format("2006-01-02 15:04"), m.ID)
	fmt.Fprintf(e.stdout, "facilitator: %s, drawn among %d (draw %s, seed %s)\n", d.MemberName(m.Facilitator), len(m.Draw.Eligible), m.Draw.ID, m.Draw.Seed)
	if m.Draw.Round != "" {
		fmt.Fprintf(e.stdout, "  seed from the facilitation draw %s and the meeting's number %d\n", m.Draw.Round, m.Seq)
	} else if m.Draw.SeedSource == "server" {
		fmt.Fprintln(e.stdout, "  seed from the server alone, committed first: no facilitation draw had closed yet")
	}
	names := func(ids []string) string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[i] = d.MemberName(id)
		}
		return strings.Join(out, ", ")
	}
	if len(m.Draw.Rest) > 0 {
		fmt.Fprintf(e.stdout, "  resting after facilitating: %s\n", names(m.Draw.Rest))
	}
	if len(m.Draw.Cooldown) > 0 {
		fmt.Fprintf(e.stdout, "  resting after a temperature check: %s\n", names(m.Draw.Cooldown))
	}
	if m.Minutes != nil {
		fmt.Fprintf(e.stdout, "minutes by %s:\n  %s\n", d.MemberName(m.Minutes.By), strings.ReplaceAll(m.Minutes.Text, "\n", "\n  "))
		for _, dec := range m.Minutes.Decisions {
			fmt.Fprintf(e.stdout, "  decision (%s): %s\n", dec.Tag, dec.Text)
		}
	} else {
		fmt.Fprintln(e.stdout, "minutes: not recorded yet")
	}
	s := m.Summary
	fmt.Fprintf(e.stdout, "temperature check: %s, %s checked in\n", s.Status, plural(s.CheckedIn, "member", "members"))
	for id, n := range s.Named {
		fmt.Fprintf(e.stdout, "  %s named %s\n", d.MemberName(id), plural(int(n), "time", "times"))
	}
	for _, mo := range s.Moments {
		fmt.Fprintf(e.stdout, "  least heard: %s\n", mo)
	}
	if len(s.Rests) > 0 {
		fmt.Fprintf(e.stdout, "  resting from facilitation: %s\n", names(s.Rests))
	}
}

func meetingsCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("meetings takes no arguments")
		}
		d, c, err := openClient(e)
		if err != nil {
			return err
		}
		list, err := c.Meetings(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tWHEN\tTITLE\tFACILITATOR\tCHECK\tID")
		for _, m := range list.Meetings {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s (%d)\t%s\n", m.Seq, m.At.Local().Format("2006-01-02 15:04"), m.Title, d.MemberName(m.Facilitator), m.Summary.Status, m.Summary.CheckedIn, m.ID)
		}
		fmt.Fprintln(tw, "\nMEMBER\tNAMED\tIN MEETINGS\tRESTED\tFACILITATED\tRESTING NOW")
		for _, p := range list.Pattern {
			resting := "no"
			if p.RestingNow {
				resting = fmt.Sprintf("yes, %s more", plural(p.CooldownLeft, "meeting", "meetings"))
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", d.MemberName(p.Member), p.Named, p.MeetingsNamed, p.Rested, p.Facilitated, resting)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n", plural(len(list.Meetings), "meeting", "meetings"))
		return nil
	}
}

func stepDownCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("want ROLE_ID (see circlectl roles)")
		}
		_, c, err := openClient(e)
		if err != nil {
			return err
		}
		r, err := c.StepDown(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "you stepped down from %s; it is vacant now, and the circle honours the handing-on (circlectl honours)\n", r.Name)
		return nil
	}
}

func honoursCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("honours takes no arguments")
		}
		d, c, err := openClient(e)
		if err != nil {
			return err
		}
		h, err := c.Honours(ctx)
		if err != nil {
			return err
		}
		kinds := map[string]string{"stepped_down": "stepped down", "term_ended": "served to the term limit", "rotated": "rotated out"}
		for _, x := range h.Honours {
			fmt.Fprintf(e.stdout, "%s  %s %s as %s after %s\n", x.At.Local().Format("2006-01-02"), d.MemberName(x.Member), kinds[x.Kind], x.RoleName, plural(x.Terms, "term", "terms"))
		}
		fmt.Fprintf(e.stdout, "%s\n", plural(len(h.Honours), "honour", "honours"))
		return nil
	}
}

// printAutonomySufficiency prints the scorecard's autonomy (decisions
// made here) and sufficiency (declared needs met, and hoarding).
func printAutonomySufficiency(e *env, d *client.Device, sc *wire.Scorecard) {
	a := sc.Autonomy
	if a.Share == nil {
		fmt.Fprintln(e.stdout, "autonomy: no tagged decisions in any minutes yet")
	} else {
		fmt.Fprintf(e.stdout, "autonomy: %.0f%% of %s made here (%d local, %d external)", *a.Share*100, plural(a.Local+a.External, "decision", "decisions"), a.Local, a.External)
		if a.Trend != "" {
			fmt.Fprintf(e.stdout, ", %s", a.Trend)
		}
		fmt.Fprintln(e.stdout)
		for _, q := range a.Quarters {
			fmt.Fprintf(e.stdout, "  %s: %d local, %d external\n", q.Quarter, q.Local, q.External)
		}
	}
	s := sc.Sufficiency
	if len(s.Needs) == 0 {
		fmt.Fprintln(e.stdout, "sufficiency: no needs declared (policy need.<name>, e.g. need.food=\"12 meal/month: shared dinners\")")
	}
	for _, n := range s.Needs {
		state := "met"
		if !n.IsMet {
			state = "not yet met"
		}
		words := ""
		if n.Words != "" {
			words = " (" + n.Words + ")"
		}
		fmt.Fprintf(e.stdout, "need %s%s: %s of %s %s in %s, %s\n", n.Name, words, num(n.Met), num(n.Target), n.Kind, n.Period, state)
	}
	if h := s.Hoarding; h.Member != "" {
		verdict := "nobody holds far more than the rest"
		if h.FarMore {
			verdict = "far more than the rest"
		}
		fmt.Fprintf(e.stdout, "most credit held: %s, %sh (%.0f%% of all held): %s\n", d.MemberName(h.Member), num(h.Holds), h.Share*100, verdict)
	}
}
