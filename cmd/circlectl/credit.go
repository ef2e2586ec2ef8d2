package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/circles-coop/circles/crdt"
)

// creditCmd gives mutual credit offline: the transfer is written into the
// device's ledger with crdt.PutCredit (as "log" writes an entry) and the
// next sync delivers it.
func creditCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	to := fs.String("to", "", "member (name or id) who receives the credit (required)")
	note := fs.String("note", "", "what the credit is for")
	at := fs.String("at", "", "when: RFC 3339, 2025-05-01 18:00, yesterday, -3h (default: now)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 1 {
			return usagef("want AMOUNT, got %d arguments", len(args))
		}
		if *to == "" {
			return usagef("--to MEMBER is required")
		}
		amount, _, err := parseQuantity(args[0])
		if err != nil {
			return usagef("%v", err)
		}
		when, err := parseWhen(*at, time.Now())
		if err != nil {
			return usagef("--at: %v", err)
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		id, err := resolveMember(d, "--to", *to)
		if err != nil {
			return err
		}
		c, err := d.Credit(crdt.Credit{To: id, Amount: amount, Note: *note, At: when})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "gave %s of credit to %s at %s (credit %s); run circlectl sync to share it\n",
			formatQuantity(c.Amount, "h"), d.MemberName(c.To), c.At.Local().Format("2006-01-02 15:04"), c.ID)
		return nil
	}
}

// creditsCmd lists mutual-credit transfers with the circle's flags.
func creditsCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	member := fs.String("member", "", "only what this member (name or id) gave or received")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("credits takes no arguments")
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
		list, err := d.Credits(ctx, only)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WHEN\tFROM\tTO\tAMOUNT\tFROM BALANCE\tFLAGS\tNOTE\t")
		for _, c := range list.Credits {
			var flags []string
			if c.OverLimit {
				flags = append(flags, "over limit")
			}
			if c.Problem != "" {
				flags = append(flags, "not counted: "+strings.ReplaceAll(c.Problem, "_", " "))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.At.Local().Format("2006-01-02 15:04"), d.MemberName(c.From), d.MemberName(c.To),
				formatQuantity(c.Amount, "h"), num(c.FromBalance), nameOr(strings.Join(flags, ", "), "-"), c.Note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s; credit limit %sh\n", plural(len(list.Credits), "transfer", "transfers"), num(list.Limit))
		return nil
	}
}

// scorecardCmd shows the sovereignty scorecard.
func scorecardCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	period := fs.String("period", "month", "month, quarter or year")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) != 0 {
			return usagef("scorecard takes no arguments")
		}
		switch *period {
		case "month", "quarter", "year":
		default:
			return usagef("--period %q: want month, quarter or year", *period)
		}
		d, err := openDevice(e)
		if err != nil {
			return err
		}
		sc, err := d.Scorecard(ctx, *period)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
		header := []string{strings.ToUpper(sc.Period)}
		for _, dep := range sc.Dependencies {
			header = append(header, strings.ToUpper(strings.ReplaceAll(dep.Name, "_", " ")))
		}
		fmt.Fprintln(tw, strings.Join(append(header, "TOTAL"), "\t")+"\t")
		row := func(label string, counts map[string]int, total int) {
			cells := []string{label}
			for _, dep := range sc.Dependencies {
				cells = append(cells, fmt.Sprint(counts[dep.Name]))
			}
			fmt.Fprintln(tw, strings.Join(append(cells, fmt.Sprint(total)), "\t")+"\t")
		}
		for _, p := range sc.Periods {
			row(p.Period, p.Counts, p.Total)
		}
		row("all", sc.Totals.Counts, sc.Totals.Total)
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s reversed; %sh volunteered\n", plural(sc.Totals.Total, "dependency", "dependencies"), num(sc.Totals.Quantities["hours_volunteered"]))
		printAutonomySufficiency(e, d, sc) // rituals.go
		return nil
	}
}
