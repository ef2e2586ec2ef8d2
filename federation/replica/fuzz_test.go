package replica

import (
	"testing"

	"github.com/automerge/automerge-go"
)

// FuzzReceiveChanges feeds arbitrary bytes to the receiving side of a
// replica as if circle X had published them: it must never panic (nor let
// automerge-go abort), and whatever it accepts must have been written by
// X's actor.
func FuzzReceiveChanges(f *testing.F) {
	d := automerge.New()
	if err := d.SetActorID(ActorFor("f", "X")); err != nil {
		f.Fatal(err)
	}
	_ = d.RootMap().Set("profile", `{"name":"X"}`)
	_, _ = d.Commit("one")
	_ = d.RootMap().Set("delegates", `[]`)
	_, _ = d.Commit("two")
	chs, _ := d.Changes()
	var raw [][]byte
	for _, c := range chs {
		raw = append(raw, c.Save())
	}
	for _, m := range frame(raw) {
		f.Add(m)
	}
	f.Add(frame(raw[1:])[0]) // a change before its dependency
	f.Add([]byte{})
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, msg []byte) {
		r := newReplica(Config{Federation: "f", Circle: "me"}, nil)
		err := r.receiveChanges("X", msg)
		p := r.peers["X"]
		if err != nil || p == nil {
			return
		}
		all, cerr := p.doc.Changes()
		if cerr != nil {
			t.Fatalf("changes of an accepted document: %v", cerr)
		}
		for _, c := range all {
			if c.ActorID() != ActorFor("f", "X") {
				t.Fatalf("accepted a change by %s on X's subject", c.ActorID())
			}
		}
		_ = readView(p.doc, "X")
	})
}
