package crdt_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
)

// mustCommit commits doc and fails the test on error.
func mustCommit(tb testing.TB, doc *automerge.Doc) {
	tb.Helper()
	if _, err := doc.Commit("test", automerge.CommitOptions{AllowEmpty: true}); err != nil {
		tb.Fatalf("Commit() = %v", err)
	}
}

// mustReload saves and loads doc, so reads see what a peer would.
func mustReload(tb testing.TB, doc *automerge.Doc) *automerge.Doc {
	tb.Helper()
	mustCommit(tb, doc)
	out, err := automerge.Load(doc.Save())
	if err != nil {
		tb.Fatalf("Load() = %v", err)
	}
	return out
}

// mustGet reads the value at path in doc.
func mustGet(tb testing.TB, doc *automerge.Doc, path ...any) *automerge.Value {
	tb.Helper()
	v, err := doc.Path(path...).Get()
	if err != nil {
		tb.Fatalf("Path(%v).Get() = %v", path, err)
	}
	return v
}

// wantRuleError checks that err is a *crdt.RuleError of the given rule
// whose message names field (quoted), unless field is empty.
func wantRuleError(tb testing.TB, err error, rule, field string) {
	tb.Helper()
	var re *crdt.RuleError
	if !errors.As(err, &re) {
		tb.Fatalf("error = %v (%T), want a *crdt.RuleError", err, err)
	}
	if re.Rule != rule {
		tb.Errorf("RuleError.Rule = %q, want %q (message %q)", re.Rule, rule, re.Message)
	}
	if field != "" && !strings.Contains(re.Message, field) {
		tb.Errorf("RuleError.Message = %q, want it to name %s", re.Message, field)
	}
	if got, want := re.Error(), re.Rule+": "+re.Message; got != want {
		tb.Errorf("Error() = %q, want %q", got, want)
	}
}

// kindsUnder returns the automerge kinds of the fields of the map at path.
func kindsUnder(tb testing.TB, doc *automerge.Doc, path ...any) map[string]automerge.Kind {
	tb.Helper()
	v := mustGet(tb, doc, path...)
	if v.Kind() != automerge.KindMap {
		tb.Fatalf("Path(%v) kind = %v, want map", path, v.Kind())
	}
	vals, err := v.Map().Values()
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]automerge.Kind, len(vals))
	for k, v := range vals {
		out[k] = v.Kind()
	}
	return out
}

// decodedSince returns the object ids of d's root containers, read from
// its first change as the server's policy reads them, and the changes d
// made since heads, decoded.
func decodedSince(tb testing.TB, d *automerge.Doc, heads []automerge.ChangeHash) (map[string]amchange.OpID, []*amchange.Change) {
	tb.Helper()
	all, _ := d.Changes()
	first, err := amchange.Decode(all[0].Save())
	if err != nil {
		tb.Fatal(err)
	}
	roots := map[string]amchange.OpID{}
	for _, op := range first.Ops {
		if op.Obj.IsRoot() && op.Action.MakesObject() {
			roots[op.Key] = op.ID
		}
	}
	news, _ := d.Changes(heads...)
	var decoded []*amchange.Change
	for _, ch := range news {
		dc, err := amchange.Decode(ch.Save())
		if err != nil {
			tb.Fatal(err)
		}
		decoded = append(decoded, dc)
	}
	return roots, decoded
}
