package crdt_test

import (
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt"
)

// FuzzReadDocs loads arbitrary bytes as a document and reads it as every
// kind of member-written document: the readers must return an error or a
// value, never panic, and what they return must validate.
func FuzzReadDocs(f *testing.F) {
	ledger := automerge.New()
	_ = crdt.InitLedger(ledger, "m-a", 0)
	_ = crdt.PutEntry(ledger, sampleEntry(id1))
	_ = crdt.PutCredit(ledger, sampleCredit(id2))
	ballots := automerge.New()
	_ = crdt.InitBallots(ballots, "m-a")
	_ = crdt.PutProposal(ballots, sampleProposal())
	_ = crdt.PutVote(ballots, crdt.Vote{Proposal: id1, Choice: "yes", At: t0})
	js := automerge.New()
	_ = js.RootMap().Set("entries", map[string]any{id1: map[string]any{"id": automerge.NewText(id1), "quantity": int64(-1)}})
	for _, d := range []*automerge.Doc{ledger, ballots, js, automerge.New()} {
		if _, err := d.Commit("seed", automerge.CommitOptions{AllowEmpty: true}); err != nil {
			f.Fatal(err)
		}
		f.Add(d.Save())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := automerge.Load(data)
		if err != nil {
			return
		}
		if entries, credits, err := crdt.ReadLedger(doc); err == nil {
			for _, e := range entries {
				if err := e.Validate(); err != nil {
					t.Errorf("ReadLedger() returned an invalid entry: %v", err)
				}
			}
			for _, c := range credits {
				if err := c.Validate(); err != nil {
					t.Errorf("ReadLedger() returned an invalid credit: %v", err)
				}
			}
		}
		if b, err := crdt.ReadBallots(doc); err == nil {
			for _, p := range b.Proposals {
				if err := p.Validate(); err != nil {
					t.Errorf("ReadBallots() returned an invalid proposal: %v", err)
				}
			}
		}
		_, _ = crdt.ReadCharterDraft(doc)
		_, _ = crdt.ReadRoster(doc)
		_, _ = crdt.ReadCharter(doc)
		if r, err := crdt.ReadRoster(doc); err == nil {
			_ = r.Active(t0)
		}
	})
}
