package crdt_test

import (
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/crdt/amchange"
)

// FuzzParseReset feeds arbitrary statements to ParseReset and
// CheckAssertionClaims: neither may panic; what ParseReset accepts is a
// reset statement of this circle's roster, and never also a device
// assertion.
func FuzzParseReset(f *testing.F) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newResetCircle(f, 2, at.Add(-30*24*time.Hour))
	f.Add(c.sign(f, "m_aa", 0, "j1", at))
	f.Add(c.sign(f, "m_ba", 7, "j2", at))
	withExp := resetClaims(c.id, at)
	withExp["exp"] = at.Add(time.Minute).Unix()
	f.Add(c.signClaims(f, "m_aa", withExp, nil))
	f.Add(c.signClaims(f, "m_aa", jwt.MapClaims{"iss": "d_m_aa", "aud": c.id, "iat": at.Unix(), "exp": at.Unix() + 60, "jti": "x"}, nil))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, statement string) {
		sig, err := crdt.ParseReset(statement, c.id, c.roster)
		aerr := crdt.CheckAssertionClaims(statement)
		if err != nil {
			return
		}
		m, ok := c.roster.Members[sig.Member]
		switch {
		case !ok || m.Devices[sig.Device] == nil:
			t.Fatalf("ParseReset accepted a statement of %s/%s, not in the roster", sig.Member, sig.Device)
		case sig.Statement != statement || sig.Epoch < 0 || sig.JTI == "":
			t.Fatalf("ParseReset = %+v", sig)
		case aerr == nil:
			t.Fatalf("a statement ParseReset accepts also passes CheckAssertionClaims: %q", statement)
		}
	})
}

// FuzzCheckDraftChanges decodes arbitrary bytes as a change and bounds it
// against a charter draft: it must not panic, and a change it refuses
// must be one whose result CheckCharterDraft would refuse too, whenever
// the change applies.
func FuzzCheckDraftChanges(f *testing.F) {
	e := editDraft(f, newDraft(f, "We share."), spliceText(f, 3, 5, "care"))
	for _, ch := range e.raw {
		f.Add(ch.Save())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dc, err := amchange.Decode(data)
		if err != nil {
			return
		}
		server, err := e.server.Fork() // the draft the seed changes were made on
		if err != nil {
			t.Fatal(err)
		}
		pre := crdt.CheckDraftChanges(server, e.text, []*amchange.Change{dc})
		// Apply only what the sync layer would: automerge-rs aborts the
		// process on some malformed operations that CheckFreeForm refuses.
		if crdt.CheckFreeForm(crdt.KindCharterDraft, e.known, []*amchange.Change{dc}) != nil {
			return
		}
		chs, err := automerge.LoadChanges(data)
		if err != nil || server.Apply(chs...) != nil {
			return
		}
		if pre != nil && crdt.CheckCharterDraft(server) == nil {
			t.Fatalf("CheckDraftChanges refused a change (%v) whose result fits", pre)
		}
	})
}
