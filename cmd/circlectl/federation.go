package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/wire"
)

// federationCmd is `circlectl federation join|leave|status|show`: joining
// and leaving are proposals of the circle (made offline, delivered by
// sync), status and show ask the server.
func federationCmd(fs *flag.FlagSet) func(context.Context, *env, []string) error {
	title := fs.String("title", "", "the proposal's title (join and leave; default: says what it does)")
	body := fs.String("body", "", "the proposal's text (join and leave)")
	return func(ctx context.Context, e *env, args []string) error {
		if len(args) == 0 {
			return usagef("want join HUB_URL INVITE, leave FEDERATION_ID, status or show FEDERATION_ID")
		}
		switch args[0] {
		case "join":
			if len(args) != 3 {
				return usagef("want join HUB_URL INVITE (the hub's address and its one-time invite)")
			}
			payload := map[string]any{"hub": strings.TrimRight(args[1], "/"), "invite": args[2]}
			return proposeFederation(e, crdt.ProposalFederationJoin, orDefault(*title, "Join the federation at "+payload["hub"].(string)), *body, payload)
		case "leave":
			if len(args) != 2 {
				return usagef("want leave FEDERATION_ID")
			}
			return proposeFederation(e, crdt.ProposalFederationLeave, orDefault(*title, "Leave federation "+args[1]), *body, map[string]any{"federation": args[1]})
		case "status":
			if len(args) != 1 {
				return usagef("status takes no arguments")
			}
			_, c, err := openClient(e)
			if err != nil {
				return err
			}
			list, err := c.Federations(ctx)
			if err != nil {
				return err
			}
			printFederations(e, list.Federations)
			return nil
		case "show":
			if len(args) != 2 {
				return usagef("want show FEDERATION_ID")
			}
			return showFederation(ctx, e, args[1])
		}
		return usagef("unknown federation command %q: want join, leave, status or show", args[0])
	}
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// proposeFederation makes a federation proposal on this device (checked
// as the server will check it) for sync to deliver.
func proposeFederation(e *env, kind, title, body string, payload map[string]any) error {
	d, err := openDevice(e)
	if err != nil {
		return err
	}
	p, err := d.Propose(crdt.Proposal{Kind: kind, Title: title, Body: body, Payload: payload})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "proposed %s %q (proposal %s); run circlectl sync to deliver it.\n", p.Kind, p.Title, p.ID)
	fmt.Fprintln(e.stdout, "Once it passes it takes effect at once; see circlectl federation status.")
	return nil
}

func printFederations(e *env, fs []wire.Federation) {
	if len(fs) == 0 {
		fmt.Fprintln(e.stdout, "This circle is in no federation. Join one: circlectl federation join HUB_URL INVITE")
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEDERATION\tNAME\tSTATUS\tLINK\tCIRCLES")
	for _, f := range fs {
		link := "down"
		if f.Connected {
			link = "up"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", f.ID, f.Name, f.Status, link, len(f.Circles))
	}
	tw.Flush()
}

// showFederation prints one federation: GET /v1/federations/{id} where the
// server has it, else its entry of GET /v1/federations.
func showFederation(ctx context.Context, e *env, id string) error {
	_, c, err := openClient(e)
	if err != nil {
		return err
	}
	obj, err := c.Federation(ctx, id)
	var ae *client.APIError
	if err == nil {
		b, _ := json.MarshalIndent(obj, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	if !errors.As(err, &ae) || (ae.Status != http.StatusNotFound && ae.Status != http.StatusNotImplemented && ae.Status != http.StatusMethodNotAllowed) {
		return err
	}
	list, lerr := c.Federations(ctx)
	if lerr != nil {
		return lerr
	}
	for _, f := range list.Federations {
		if f.ID != id {
			continue
		}
		link := "down"
		if f.Connected {
			link = "up"
		}
		fmt.Fprintf(e.stdout, "Federation %s (%s): %s, link %s\n", f.Name, f.ID, f.Status, link)
		sort.Slice(f.Circles, func(i, j int) bool { return f.Circles[i].Name < f.Circles[j].Name })
		for _, cc := range f.Circles {
			fmt.Fprintf(e.stdout, "  %s  %s\n", cc.CircleID, cc.Name)
		}
		return nil
	}
	return fmt.Errorf("this circle has no federation %s (see circlectl federation status)", id)
}
