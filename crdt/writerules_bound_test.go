package crdt_test

import (
	"strings"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
)

// ballotsBatch returns the roots of a fresh ballots document and the
// decoded changes write makes to it on a member's device.
func ballotsBatch(t *testing.T, write func(d *automerge.Doc)) (map[string]amchange.OpID, []*amchange.Change) {
	t.Helper()
	d := automerge.New()
	if err := crdt.InitBallots(d, "m_abc"); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, d)
	heads := d.Heads()
	write(d)
	mustCommit(t, d)
	return decodedSince(t, d, heads)
}

// Values no member document may hold are refused before they are applied,
// not only when the applied document is read back.
func TestCheckAppendOnlyRefusesOversizedValuesBeforeApplying(t *testing.T) {
	long := strings.Repeat("x", crdt.MaxBodyLen+1)
	none := func(string, string) bool { return false }
	cases := []struct {
		name  string
		write func(d *automerge.Doc) error
		ok    bool
	}{
		{"a proposal with a body at the bound", func(d *automerge.Doc) error {
			return d.Path("proposals", id1).Set(map[string]any{"id": id1, "body": long[1:]})
		}, true},
		{"a proposal body over the bound, as a string", func(d *automerge.Doc) error {
			return d.Path("proposals", id1).Set(map[string]any{"id": id1, "body": long})
		}, false},
		{"a proposal body over the bound, as text", func(d *automerge.Doc) error {
			return d.Path("proposals", id1).Set(map[string]any{"id": id1, "body": automerge.NewText(long)})
		}, false},
		{"a vote reason over the bound, as bytes", func(d *automerge.Doc) error {
			return d.Path("votes", id1).Set(map[string]any{"reason": []byte(long)})
		}, false},
		{"a reset statement over the bound, as text", func(d *automerge.Doc) error {
			return d.Path("resets").Map().Set("j1", automerge.NewText(long))
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			roots, changes := ballotsBatch(t, func(d *automerge.Doc) {
				if err := tc.write(d); err != nil {
					t.Fatal(err)
				}
			})
			_, err := crdt.CheckAppendOnly(crdt.KindBallots, roots, none, changes)
			if tc.ok && err != nil {
				t.Fatalf("CheckAppendOnly = %v, want nil", err)
			}
			if !tc.ok {
				wantRuleError(t, err, crdt.RuleSchema, "")
			}
		})
	}
}
