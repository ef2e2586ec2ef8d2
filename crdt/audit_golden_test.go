package crdt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/circles-coop/circles/crdt"
)

// update rewrites the golden files: go test ./crdt/ -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenAuditActions is a fixed sequence of audit entries: fixed times,
// kinds and data, so that the chain's hashes are the same in every run.
// The data holds what RFC 8785 has rules for: keys out of order, numbers
// that JSON may write in several ways, escapes, and text beyond ASCII.
var goldenAuditActions = []struct {
	at   time.Time
	kind string
	data any
}{
	{time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), crdt.AuditCircleCreated,
		map[string]any{"name": "Tool Library", "circle": "c_golden"}},
	{time.Date(2026, 11, 2, 9, 1, 30, 250_000_000, time.UTC), crdt.AuditMemberEnrolled,
		map[string]any{"member": "m_alice", "name": "Alice", "device": "d_alice_phone"}},
	{time.Date(2026, 11, 2, 9, 5, 0, 0, time.FixedZone("CET", 3600)), crdt.AuditMemberEnrolled,
		map[string]any{"member": "m_bob", "name": "Bob \"the Builder\" <Ünal> & co. \u00e9\u2028"}},
	{time.Date(2026, 11, 3, 17, 45, 12, 999_999_999, time.UTC), crdt.AuditDeviceEnrolled,
		map[string]any{"member": "m_bob", "device": "d_bob_tablet"}},
	{time.Date(2026, 11, 4, 8, 0, 0, 1_000_000, time.UTC), crdt.AuditDeviceRevoked,
		map[string]any{"member": "m_bob", "device": "d_bob_tablet", "by": "m_bob"}},
	{time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC), crdt.AuditCreditOverLimit,
		map[string]any{"credit": "t_1", "author": "m_alice", "to": "m_bob", "amount": 2.5, "balance": -10.5, "limit": 10,
			"at": "2026-11-05T12:00:00Z", "tiny": 1e-7, "huge": 1e21, "zero": 0.0}},
	{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), crdt.AuditResetExecuted,
		map[string]any{"epoch": 1, "members": []string{"m_alice", "m_bob"}, "statements": []string{"x.y.z", "a.b.c"}}},
}

// TestAuditChainGolden: the chain that crdt.NewAuditEntry builds from fixed
// inputs is byte for byte testdata/audit_chain.golden, so a change to how
// entries are hashed or encoded shows up as a diff. The golden file is then
// checked on its own, without crdt's code: each prev_hash is the hash
// before it, and each hash is the hex SHA-256 of prev_hash followed by the
// RFC 8785 form of the entry without "hash".
func TestAuditChainGolden(t *testing.T) {
	var chain []crdt.AuditEntry
	var prev *crdt.AuditEntry
	for _, a := range goldenAuditActions {
		e, err := crdt.NewAuditEntry(prev, a.at, a.kind, a.data)
		if err != nil {
			t.Fatalf("NewAuditEntry(%s): %v", a.kind, err)
		}
		chain = append(chain, e)
		prev = &chain[len(chain)-1]
	}
	if err := crdt.VerifyAudit(chain); err != nil {
		t.Fatalf("VerifyAudit = %v", err)
	}
	got, err := json.MarshalIndent(chain, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')

	path := filepath.Join("testdata", "audit_chain.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./crdt/ -run Golden -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the audit chain differs from %s (if the change is meant, rerun with -update and review the diff):\ngot:\n%s", path, got)
	}

	// The golden file, checked independently of crdt's hashing.
	var entries []map[string]json.RawMessage
	if err := json.Unmarshal(want, &entries); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(entries) != len(goldenAuditActions) {
		t.Fatalf("%s has %d entries, want %d", path, len(entries), len(goldenAuditActions))
	}
	prevHash := crdt.GenesisHash
	for i, e := range entries {
		var seq int64
		var hash, prevField string
		_ = json.Unmarshal(e["seq"], &seq)
		_ = json.Unmarshal(e["hash"], &hash)
		_ = json.Unmarshal(e["prev_hash"], &prevField)
		if seq != int64(i+1) || prevField != prevHash {
			t.Fatalf("entry %d: seq %d prev_hash %s, want %d and %s", i+1, seq, prevField, i+1, prevHash)
		}
		delete(e, "hash")
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := jcs.Transform(raw)
		if err != nil {
			t.Fatalf("entry %d: RFC 8785: %v", i+1, err)
		}
		sum := sha256.Sum256(append([]byte(prevHash), canon...))
		if recomputed := hex.EncodeToString(sum[:]); recomputed != hash {
			t.Errorf("entry %d: hash %s, recomputed from %s: %s", i+1, hash, canon, recomputed)
		}
		prevHash = hash
	}
}

// TestAuditCanonicalForm pins the RFC 8785 bytes one entry is hashed
// over, written out by hand: keys sorted by UTF-16 code units, no spaces,
// numbers in their shortest ECMAScript form, only the escapes RFC 8785
// requires.
func TestAuditCanonicalForm(t *testing.T) {
	at := time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)
	e, err := crdt.NewAuditEntry(nil, at, "credit.over_limit", map[string]any{"to": "m_b\u00e9", "amount": 1e21, "tiny": 1e-7, "note": "<a & b>\u2028"})
	if err != nil {
		t.Fatal(err)
	}
	canon := `{"at":"2026-11-05T12:00:00Z","data":{"amount":1e+21,"note":"<a & b>` + "\u2028" + `","tiny":1e-7,"to":"m_b` + "\u00e9" + `"},"kind":"credit.over_limit","prev_hash":"` + crdt.GenesisHash + `","seq":1}`
	sum := sha256.Sum256([]byte(crdt.GenesisHash + canon))
	if want := hex.EncodeToString(sum[:]); e.Hash != want {
		t.Errorf("NewAuditEntry hash = %s, want SHA-256 of the genesis hash and %s = %s", e.Hash, canon, want)
	}
}
