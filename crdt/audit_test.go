package crdt_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

func auditChain(t *testing.T, n int) (*automerge.Doc, []crdt.AuditEntry) {
	t.Helper()
	d := automerge.New()
	if err := crdt.InitAudit(d); err != nil {
		t.Fatal(err)
	}
	var prev *crdt.AuditEntry
	at := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	for i := 0; i < n; i++ {
		e, err := crdt.NewAuditEntry(prev, at.Add(time.Duration(i)*time.Hour), "member.enrolled", map[string]any{"member": "m_" + strings.Repeat("x", i+1), "n": i})
		if err != nil {
			t.Fatal(err)
		}
		if err := crdt.AppendAudit(d, e); err != nil {
			t.Fatal(err)
		}
		prev = &e
	}
	if _, err := d.Commit("audit"); err != nil {
		t.Fatal(err)
	}
	entries, err := crdt.ReadAudit(d, 0)
	if err != nil {
		t.Fatal(err)
	}
	return d, entries
}

// TestAuditChain: a chain written and read back verifies, survives a save
// and load, and every kind of tampering is caught at the right entry.
func TestAuditChain(t *testing.T) {
	d, entries := auditChain(t, 5)
	if len(entries) != 5 || entries[0].PrevHash != crdt.GenesisHash {
		t.Fatalf("ReadAudit = %d entries, first prev %q", len(entries), entries[0].PrevHash)
	}
	if err := crdt.VerifyAudit(entries); err != nil {
		t.Fatalf("VerifyAudit(untouched) = %v", err)
	}
	re, err := automerge.Load(d.Save())
	if err != nil {
		t.Fatal(err)
	}
	again, err := crdt.ReadAudit(re, 2)
	if err != nil || len(again) != 3 || again[0].Seq != 3 {
		t.Fatalf("ReadAudit(after 2) = %d entries from %v, %v", len(again), again, err)
	}

	tamper := []struct {
		name  string
		mod   func([]crdt.AuditEntry) []crdt.AuditEntry
		entry string
	}{
		{"data changed", func(es []crdt.AuditEntry) []crdt.AuditEntry {
			es[2].Data = json.RawMessage(`{"member":"m_evil","n":2}`)
			return es
		}, "entry 3"},
		{"time changed", func(es []crdt.AuditEntry) []crdt.AuditEntry { es[1].At = es[1].At.Add(time.Second); return es }, "entry 2"},
		{"entry removed", func(es []crdt.AuditEntry) []crdt.AuditEntry { return append(es[:1], es[2:]...) }, "entry 2"},
		{"entries swapped", func(es []crdt.AuditEntry) []crdt.AuditEntry { es[3], es[4] = es[4], es[3]; return es }, "entry 4"},
		{"hash recomputed but chain broken", func(es []crdt.AuditEntry) []crdt.AuditEntry {
			es[3].Kind = "member.removed"
			es[3].Hash, _ = crdt.AuditHash(es[3])
			return es
		}, "entry 5"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.mod(append([]crdt.AuditEntry(nil), entries...))
			err := crdt.VerifyAudit(es)
			if !errors.Is(err, crdt.ErrAuditBroken) || !strings.Contains(err.Error(), tc.entry+" ") {
				t.Errorf("VerifyAudit = %v, want ErrAuditBroken naming %s", err, tc.entry)
			}
		})
	}
}

// TestVerifyAuditResets: an executed reset in the log is re-verified
// against the roster's keys; a forged or mismatched statement is named.
func TestVerifyAuditResets(t *testing.T) {
	const circle = "circle1"
	r := &crdt.Roster{Members: map[string]*crdt.Member{}}
	keys := map[string]ed25519.PrivateKey{}
	for _, m := range []string{"m_a", "m_b", "m_c"} {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		dev := "d_" + m
		keys[m] = priv
		r.Members[m] = &crdt.Member{ID: m, Name: m, Devices: map[string]*crdt.Device{dev: {ID: dev, PublicKey: pub}}}
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	sign := func(m string, key ed25519.PrivateKey, epoch int64) string {
		st, err := crdt.SignReset(key, "d_"+m, circle, epoch, "why", "j"+m, at)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	entryWith := func(members []string, statements []string) []crdt.AuditEntry {
		e, err := crdt.NewAuditEntry(nil, at, crdt.AuditResetExecuted, map[string]any{"epoch": 0, "members": members, "statements": statements})
		if err != nil {
			t.Fatal(err)
		}
		return []crdt.AuditEntry{e}
	}
	good := []string{sign("m_a", keys["m_a"], 0), sign("m_b", keys["m_b"], 0), sign("m_c", keys["m_c"], 0)}
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	cases := []struct {
		name       string
		members    []string
		statements []string
		ok         bool
	}{
		{"three genuine signatures", []string{"m_a", "m_b", "m_c"}, good, true},
		{"a forged signature", []string{"m_a", "m_b", "m_c"}, []string{good[0], good[1], sign("m_c", forger, 0)}, false},
		{"members listed in the wrong order", []string{"m_b", "m_a", "m_c"}, good, false},
		{"a statement for another epoch", []string{"m_a", "m_b", "m_c"}, []string{good[0], good[1], sign("m_c", keys["m_c"], 4)}, false},
		{"one member twice", []string{"m_a", "m_a", "m_b"}, []string{good[0], good[0], good[1]}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := crdt.VerifyAuditResets(entryWith(tc.members, tc.statements), r, circle)
			if tc.ok && err != nil {
				t.Errorf("VerifyAuditResets = %v, want nil", err)
			}
			if !tc.ok && (!errors.Is(err, crdt.ErrAuditBroken) || !strings.Contains(err.Error(), "entry 1 ")) {
				t.Errorf("VerifyAuditResets = %v, want ErrAuditBroken naming entry 1", err)
			}
		})
	}
}
