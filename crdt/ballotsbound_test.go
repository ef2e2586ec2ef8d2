package crdt_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

func TestBallotsGrowthIsBounded(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	doc := automerge.New()
	if err := crdt.InitBallots(doc, "m_abc"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := crdt.PutVote(doc, crdt.Vote{Proposal: uuidN(i), Choice: "yes", At: now}); err != nil {
			t.Fatal(err)
		}
	}
	doc = mustReload(t, doc)
	adding := func(container string, n int) []crdt.Added {
		out := make([]crdt.Added, n)
		for i := range out {
			out[i] = crdt.Added{Container: container, Key: "k" + strconv.Itoa(i)}
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		container string
		n         int
		ok        bool
	}{
		{"proposals up to the bound", "proposals", crdt.MaxBallotProposals, true},
		{"proposals past the bound", "proposals", crdt.MaxBallotProposals + 1, false},
		{"votes up to the bound, with those already there", "votes", crdt.MaxBallotVotes - 3, true},
		{"votes past the bound, with those already there", "votes", crdt.MaxBallotVotes - 2, false},
		{"resets past the bound", "resets", crdt.MaxBallotResets + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := crdt.CheckBallotsGrowth(doc, adding(tc.container, tc.n))
			if tc.ok && err != nil {
				t.Fatalf("CheckBallotsGrowth = %v, want nil", err)
			}
			if !tc.ok {
				wantRuleError(t, err, crdt.RuleSchema, tc.container)
			}
		})
	}
}
