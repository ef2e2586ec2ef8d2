package server_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// update rewrites the golden files: go test ./server/ -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestWireGolden records the API v1 JSON of the main responses from a real
// circle, built with a fixed clock and a fixed sequence of actions, and
// compares each with its golden file in testdata/: a renamed, added or
// removed field, a changed status or a changed value fails the test.
// go test ./server/ -run Golden -update rewrites the files; review the
// diff before committing it.
//
// What a run draws at random is normalised (see goldenNormaliser): ids,
// keys and hashes become placeholders. Times are not normalised: the clock
// fixes every time these responses hold, so a time taken from the wall
// clock instead of the server's clock fails the test.
func TestWireGolden(t *testing.T) {
	clk := servertest.FixedClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	c := servertest.Start(t, "Golden Circle", servertest.WithClock(clk.Now))
	url := c.URL()
	alice := servertest.MustEnroll(t, url, c.FounderInvite, "Alice")
	bob := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, alice, "member", ""), "Bob")
	devices := map[string]*servertest.Device{"Alice": alice, "Bob": bob}

	const entryID, proposalID = "5f0c6a52-8d4e-4c1b-9a57-0d3f2b9e7c11", "7a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	entry := servertest.ValidEntry(entryID)
	entry["quantity"], entry["unit"], entry["counterparty"] = 2.5, "h", bob.Member
	created := servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, entry))
	proposal := wire.ProposalRequest{ID: proposalID, Kind: "role.create", Title: "A treasurer", Body: "someone keeps the cash box",
		Payload: map[string]any{"name": "treasurer", "purpose": "keeps the cash box", "term": "2160h", "term_limit": 2}}
	if r := servertest.Call(t, url, "POST", "/v1/proposals", alice.Token, servertest.MustJSON(t, proposal)); r.Status != 201 {
		t.Fatalf("POST /v1/proposals = %d %s", r.Status, r.Body)
	}
	for _, d := range []*servertest.Device{alice, bob} {
		if r := servertest.Call(t, url, "POST", "/v1/proposals/"+proposalID+"/votes", d.Token, servertest.MustJSON(t, wire.VoteRequest{Choice: "yes", Reason: "we need one"})); r.Status != 200 {
			t.Fatalf("vote = %d %s", r.Status, r.Body)
		}
	}

	n := newGoldenNormaliser(t, url, alice, devices)
	badKind := servertest.ValidEntry("5f0c6a52-8d4e-4c1b-9a57-0d3f2b9e7c12")
	badKind["kind"] = "bribe"
	for _, g := range []struct {
		file, method, path string
		resp               servertest.Response
	}{
		{"circle", "GET", "/v1/circle", servertest.Response{}},
		{"ledger_entry_created", "POST", "/v1/ledger/entries", created},
		{"balances", "GET", "/v1/balances", servertest.Response{}},
		{"proposal", "GET", "/v1/proposals/" + proposalID, servertest.Response{}},
		{"roles", "GET", "/v1/roles", servertest.Response{}},
		{"resets", "GET", "/v1/resets", servertest.Response{}},
		{"audit", "GET", "/v1/audit", servertest.Response{}},
		{"error_invalid_request", "POST", "/v1/ledger/entries", servertest.Call(t, url, "POST", "/v1/ledger/entries", alice.Token, servertest.MustJSON(t, badKind))},
	} {
		t.Run(g.file, func(t *testing.T) {
			r := g.resp
			if r.Status == 0 {
				r = servertest.Call(t, url, g.method, g.path, alice.Token, nil)
			}
			got := fmt.Appendf(nil, "%s %s\n%d\n%s", g.method, g.path, r.Status, n.normalise(t, r.Body))
			checkGolden(t, filepath.Join("testdata", g.file+".golden"), got)
		})
	}
}

// checkGolden compares got with the golden file at path (after rewriting
// it with -update).
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./server/ -run Golden -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("response differs from %s (if the change is meant, rerun with -update and review the diff):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// goldenNormaliser replaces what a run draws at random in a response with
// stable placeholders:
//
//   - the circle's id is <circle>; a member's id <member:Alice>, a device's
//     <device:Alice>, its automerge actor <actor:Alice> and public key
//     <key:Alice>; the circle's documents <doc:audit>, <doc:roster>, …,
//     and a member's <doc:ledger:Alice> (segments numbered after the first:
//     <doc:ledger:Alice:2>) and <doc:ballots:Alice>;
//   - any other string that looks drawn at random (a 64-digit hex hash, a
//     32-byte key in base64, an actor id, a member or device id, a document
//     id) is <id1>, <id2>, … in the order of first appearance in the
//     response; the same value is the same placeholder throughout (so
//     the audit chain's links stay visible). The genesis prev_hash, 64
//     zeros, stays as it is.
//
// Maps the server keys by a random id (a proposal's votes) come out in the
// order of their ids, which a run draws: objects with a placeholder key
// have their keys sorted after normalising, and lists of objects that each
// name a member (the circle's members, balances) are sorted by their
// normalised text. Every other order is kept as the server wrote it.
type goldenNormaliser struct {
	named map[string]string
}

var goldenRandom = regexp.MustCompile(`^([0-9a-f]{64}|[0-9a-f]{32}|[A-Za-z0-9+/]{43}=|[md]_[1-9A-HJ-NP-Za-km-z]{8,})$`)

func newGoldenNormaliser(t *testing.T, url string, caller *servertest.Device, devices map[string]*servertest.Device) *goldenNormaliser {
	t.Helper()
	circle := servertest.MustCircle(t, url, caller)
	n := &goldenNormaliser{named: map[string]string{circle.CircleID: "<circle>"}}
	names := map[string]string{}
	for name, d := range devices {
		n.named[d.Member] = "<member:" + name + ">"
		n.named[d.ID] = "<device:" + name + ">"
		n.named[d.Actor] = "<actor:" + name + ">"
		n.named[base64.StdEncoding.EncodeToString(d.Key.Public().(ed25519.PublicKey))] = "<key:" + name + ">"
		names[d.Member] = name
	}
	for kind, id := range circle.Docs {
		if kind != "ledger" && kind != "ballots" { // the caller's own, named below
			n.named[id] = "<doc:" + kind + ">"
		}
	}
	for _, m := range circle.Members {
		name := names[m.MemberID]
		if name == "" {
			t.Fatalf("member %s of /v1/circle is not one of the test's devices", m.MemberID)
		}
		for i, l := range m.Ledgers {
			n.named[l] = fmt.Sprintf("<doc:ledger:%s>", name)
			if i > 0 {
				n.named[l] = fmt.Sprintf("<doc:ledger:%s:%d>", name, i+1)
			}
		}
		n.named[m.Ballots] = "<doc:ballots:" + name + ">"
	}
	return n
}

// normalise returns body, a JSON document, normalised and indented.
func (n *goldenNormaliser) normalise(t *testing.T, body []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	v, err := readGoldenValue(dec)
	if err != nil {
		t.Fatalf("response is not JSON: %v: %.300s", err, body)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("response has more than one JSON value: %.300s", body)
	}
	numbered := map[string]string{}
	replace := func(s string) string {
		if p, ok := n.named[s]; ok {
			return p
		}
		if s == crdt.GenesisHash {
			return s
		}
		if !goldenRandom.MatchString(s) {
			if _, err := crdt.ParseDocID(s); err != nil {
				return s
			}
		}
		if p, ok := numbered[s]; ok {
			return p
		}
		numbered[s] = fmt.Sprintf("<id%d>", len(numbered)+1)
		return numbered[s]
	}
	v.substitute(replace)
	var out bytes.Buffer
	v.write(&out, "")
	out.WriteByte('\n')
	return out.Bytes()
}

// goldenValue is a JSON value that keeps the order of its object's keys.
type goldenValue struct {
	scalar any // string, json.Number, bool or nil, for a scalar
	keys   []string
	fields []*goldenValue // an object's values, in the order of keys
	items  []*goldenValue // an array's items
	object bool
	array  bool
}

func readGoldenValue(dec *json.Decoder) (*goldenValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		v := &goldenValue{object: true}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			f, err := readGoldenValue(dec)
			if err != nil {
				return nil, err
			}
			v.keys, v.fields = append(v.keys, k.(string)), append(v.fields, f)
		}
		_, err := dec.Token()
		return v, err
	case json.Delim('['):
		v := &goldenValue{array: true}
		for dec.More() {
			item, err := readGoldenValue(dec)
			if err != nil {
				return nil, err
			}
			v.items = append(v.items, item)
		}
		_, err := dec.Token()
		return v, err
	}
	return &goldenValue{scalar: tok}, nil
}

// substitute replaces every string, object key included, by replace(s),
// in document order, then puts the orders that come from random ids in a
// stable order (see goldenNormaliser).
func (v *goldenValue) substitute(replace func(string) string) {
	switch {
	case v.object:
		placeholderKey := false
		for i := range v.keys {
			v.keys[i] = replace(v.keys[i])
			placeholderKey = placeholderKey || strings.HasPrefix(v.keys[i], "<")
			v.fields[i].substitute(replace)
		}
		if placeholderKey {
			idx := make([]int, len(v.keys))
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(v.keys[a], v.keys[b]) })
			keys, fields := make([]string, len(idx)), make([]*goldenValue, len(idx))
			for i, j := range idx {
				keys[i], fields[i] = v.keys[j], v.fields[j]
			}
			v.keys, v.fields = keys, fields
		}
	case v.array:
		namesMember := len(v.items) > 1
		texts := make(map[*goldenValue]string, len(v.items))
		for _, item := range v.items {
			item.substitute(replace)
			var b bytes.Buffer
			item.write(&b, "")
			texts[item] = b.String()
			namesMember = namesMember && item.object && strings.Contains(texts[item], `"<member:`)
		}
		if namesMember {
			slices.SortStableFunc(v.items, func(a, b *goldenValue) int { return strings.Compare(texts[a], texts[b]) })
		}
	default:
		if s, ok := v.scalar.(string); ok {
			v.scalar = replace(s)
		}
	}
}

// write writes v indented by two spaces a level, strings without HTML
// escapes.
func (v *goldenValue) write(w *bytes.Buffer, indent string) {
	str := func(s string) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	}
	inner := indent + "  "
	switch {
	case v.object && len(v.keys) == 0:
		w.WriteString("{}")
	case v.object:
		w.WriteString("{\n")
		for i, k := range v.keys {
			w.WriteString(inner)
			str(k)
			w.WriteString(": ")
			v.fields[i].write(w, inner)
			if i < len(v.keys)-1 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
		}
		w.WriteString(indent + "}")
	case v.array && len(v.items) == 0:
		w.WriteString("[]")
	case v.array:
		w.WriteString("[\n")
		for i, item := range v.items {
			w.WriteString(inner)
			item.write(w, inner)
			if i < len(v.items)-1 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
		}
		w.WriteString(indent + "]")
	default:
		switch s := v.scalar.(type) {
		case string:
			str(s)
		case json.Number:
			w.WriteString(s.String())
		case bool:
			fmt.Fprint(w, s)
		case nil:
			w.WriteString("null")
		}
	}
}
