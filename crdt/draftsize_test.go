package crdt_test

import (
	"strings"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
)

// draftEdit is one member's edit of the charter draft the server holds:
// the server's document, and the edit's changes decoded as the sync layer
// decodes them.
type draftEdit struct {
	server  *automerge.Doc
	known   crdt.ObjectKinds
	text    amchange.OpID
	raw     []*automerge.Change
	decoded []*amchange.Change
}

// newDraft returns the server's charter draft, its text set to text.
func newDraft(tb testing.TB, text string) *automerge.Doc {
	tb.Helper()
	d := automerge.New()
	if err := crdt.InitCharterDraft(d); err != nil {
		tb.Fatal(err)
	}
	if _, err := crdt.SetDraftText(d, text); err != nil {
		tb.Fatal(err)
	}
	mustCommit(tb, d)
	return d
}

// editDraft forks the server's draft as a member's device, lets edit
// change it, and returns the changes the device would send.
func editDraft(tb testing.TB, server *automerge.Doc, edit func(d *automerge.Doc)) draftEdit {
	tb.Helper()
	heads := server.Heads()
	dev, err := server.Fork()
	if err != nil {
		tb.Fatal(err)
	}
	edit(dev)
	mustCommit(tb, dev)
	e := draftEdit{server: server, known: crdt.ObjectKinds{}}
	all, err := server.Changes()
	if err != nil {
		tb.Fatal(err)
	}
	for i, ch := range all {
		dc, err := amchange.Decode(ch.Save())
		if err != nil {
			tb.Fatal(err)
		}
		e.known.Learn(dc)
		if i == 0 {
			var ok bool
			if e.text, ok = crdt.DraftTextObject(dc); !ok {
				tb.Fatal("DraftTextObject found no text object in the draft's first change")
			}
		}
	}
	if e.raw, err = dev.Changes(heads...); err != nil {
		tb.Fatal(err)
	}
	for _, ch := range e.raw {
		dc, err := amchange.Decode(ch.Save())
		if err != nil {
			tb.Fatal(err)
		}
		e.decoded = append(e.decoded, dc)
	}
	return e
}

// spliceText splices the draft's text and commits: one change, so that
// no change holds more operations than a change may.
func spliceText(tb testing.TB, pos, del int, s string) func(d *automerge.Doc) {
	return func(d *automerge.Doc) {
		if err := d.Path("text").Text().Splice(pos, del, s); err != nil {
			tb.Fatal(err)
		}
		mustCommit(tb, d)
	}
}

func TestDraftSizeIsBoundedAtSync(t *testing.T) {
	over := strings.Repeat("a", crdt.MaxDraftTextLen+2)
	half := over[:len(over)/2] // two halves make over, each in a change of its own
	cases := []struct {
		name   string
		start  string
		edit   func(t *testing.T) func(d *automerge.Doc)
		preOK  bool // CheckDraftChanges, before applying
		postOK bool // CheckCharterDraft, after applying
	}{
		{"a small edit", "We share.", func(t *testing.T) func(*automerge.Doc) { return spliceText(t, 3, 5, "care for each other") }, true, true},
		{"text past the bound in one message", "", func(t *testing.T) func(*automerge.Doc) {
			return func(d *automerge.Doc) {
				spliceText(t, 0, 0, half)(d)
				spliceText(t, 0, 0, half)(d)
			}
		}, false, false},
		{"text one past the bound, by a small edit", over[:crdt.MaxDraftTextLen-5], func(t *testing.T) func(*automerge.Doc) {
			return spliceText(t, 0, 0, "123456")
		}, false, false},
		{"text one past the bound, by an edit that also deletes", over[:crdt.MaxDraftTextLen-5], func(t *testing.T) func(*automerge.Doc) {
			return spliceText(t, 0, 1, "1234567") // only the exact check after applying can tell
		}, true, false},
		{"typed and deleted offline: net nothing", "x", func(t *testing.T) func(*automerge.Doc) {
			return func(d *automerge.Doc) {
				spliceText(t, 0, 0, half)(d)
				spliceText(t, 0, len(half), "")(d)
			}
		}, true, true},
		{"deleting what exists does not buy room", strings.Repeat("b", 1000), func(t *testing.T) func(*automerge.Doc) {
			return func(d *automerge.Doc) {
				spliceText(t, 0, 1000, "")(d)
				spliceText(t, 0, 0, half)(d)
				spliceText(t, 0, 0, half)(d)
			}
		}, false, false},
		{"a huge principle", "", func(t *testing.T) func(*automerge.Doc) {
			return func(d *automerge.Doc) {
				if err := d.Path("principles").List().Append(strings.Repeat("p", 1_000_000)); err != nil {
					t.Fatal(err)
				}
			}
		}, false, false},
		{"a principle that is a map", "", func(t *testing.T) func(*automerge.Doc) {
			return func(d *automerge.Doc) {
				if err := d.Path("principles").List().Append(automerge.NewMap()); err != nil {
					t.Fatal(err)
				}
			}
		}, true, false},
		{"too many principles", "", func(t *testing.T) func(*automerge.Doc) {
			return func(d *automerge.Doc) {
				for range crdt.MaxPrinciples + 1 {
					if err := d.Path("principles").List().Append("be kind"); err != nil {
						t.Fatal(err)
					}
				}
			}
		}, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := editDraft(t, newDraft(t, tc.start), tc.edit(t))
			if err := crdt.CheckFreeForm(crdt.KindCharterDraft, e.known, e.decoded); err != nil {
				t.Fatalf("CheckFreeForm = %v, want nil (the edit is well formed)", err)
			}
			err := crdt.CheckDraftChanges(e.server, e.text, e.decoded)
			if tc.preOK && err != nil {
				t.Fatalf("CheckDraftChanges = %v, want nil", err)
			}
			if !tc.preOK {
				wantRuleError(t, err, crdt.RuleSchema, "charter draft")
			}
			if err := e.server.Apply(e.raw...); err != nil {
				t.Fatal(err)
			}
			err = crdt.CheckCharterDraft(e.server)
			if tc.postOK && err != nil {
				t.Fatalf("CheckCharterDraft = %v, want nil", err)
			}
			if !tc.postOK {
				wantRuleError(t, err, crdt.RuleSchema, "")
			}
		})
	}
}
