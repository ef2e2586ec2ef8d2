package crdt_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt"
	"github.com/google/go-cmp/cmp"
)

func pubKey(seed byte) []byte {
	k := ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), ed25519.SeedSize)))
	return k.Public().(ed25519.PublicKey)
}

func ptr(t time.Time) *time.Time { return &t }

func sampleMember(id string, seed byte) *crdt.Member {
	dev := "d-" + id
	return &crdt.Member{
		ID: id, Name: "Member " + id, JoinedAt: t0,
		Devices: map[string]*crdt.Device{dev: {
			ID: dev, Name: "phone", PublicKey: pubKey(seed), ActorID: strings.Repeat(string("0123456789abcdef"[seed%16]), 32), AddedAt: t0,
		}},
		Ledgers: []crdt.DocID{crdt.NewDocID(), crdt.NewDocID()},
		Ballots: crdt.NewDocID(),
	}
}

func newRoster(tb testing.TB) *automerge.Doc {
	tb.Helper()
	doc := automerge.New()
	if err := crdt.InitRoster(doc); err != nil {
		tb.Fatalf("InitRoster() = %v", err)
	}
	mustCommit(tb, doc)
	return doc
}

func TestRosterRoundTrip(t *testing.T) {
	alice := sampleMember("m-alice", 1)
	alice.Devices["d-laptop"] = &crdt.Device{ID: "d-laptop", Name: "laptop", PublicKey: pubKey(2), ActorID: "ab12", AddedAt: t0.Add(time.Hour), RevokedAt: ptr(t0.Add(48 * time.Hour))}
	bob := sampleMember("m-bob", 3)
	bob.RemovedAt = ptr(t0.Add(24 * time.Hour))
	carol := sampleMember("m-carol", 4)
	carol.JoinedAt = t0.Add(10 * 24 * time.Hour)
	carol.Ledgers, carol.Ballots = nil, ""
	role := &crdt.Role{ID: "r-keeper", Name: "Keeper of keys", Purpose: "Holds the shed keys", Term: 2160 * time.Hour, TermLimit: 2,
		Holder: "m-alice", TermStart: ptr(t0), TermEnd: ptr(t0.Add(2160 * time.Hour)), TermsServed: 1}
	vacant := &crdt.Role{ID: "r-scribe", Name: "Scribe", Term: 720 * time.Hour, TermLimit: 1}
	mandate := &crdt.Mandate{ID: "md-1", Member: "m-bob", Issue: "water", Scope: "council vote", Deadline: t0.Add(720 * time.Hour), GrantedAt: t0, Status: crdt.MandateActive}

	doc := newRoster(t)
	for _, m := range []*crdt.Member{alice, bob, carol} {
		if err := crdt.PutMember(doc, m); err != nil {
			t.Fatalf("PutMember(%s) = %v", m.ID, err)
		}
	}
	for _, r := range []*crdt.Role{role, vacant} {
		if err := crdt.PutRole(doc, r); err != nil {
			t.Fatalf("PutRole(%s) = %v", r.ID, err)
		}
	}
	if err := crdt.PutMandate(doc, mandate); err != nil {
		t.Fatalf("PutMandate() = %v", err)
	}
	doc = mustReload(t, doc)
	got, err := crdt.ReadRoster(doc)
	if err != nil {
		t.Fatalf("ReadRoster() = %v", err)
	}
	want := &crdt.Roster{
		Members:  map[string]*crdt.Member{"m-alice": alice, "m-bob": bob, "m-carol": carol},
		Roles:    map[string]*crdt.Role{"r-keeper": role, "r-scribe": vacant},
		Mandates: map[string]*crdt.Mandate{"md-1": mandate},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadRoster() (-want +got):\n%s", diff)
	}
	if k := kindsUnder(t, doc, "members", "m-alice", "devices", "d-m-alice"); k["public_key"] != automerge.KindStr || k["added_at"] != automerge.KindStr {
		t.Errorf("stored device kinds = %v, want scalar strings", k)
	}
	if got, want := got.Members["m-alice"].CurrentLedger(), alice.Ledgers[1]; got != want {
		t.Errorf("CurrentLedger() = %q, want %q", got, want)
	}

	// Overwriting a member replaces its entry.
	alice.Name = "Alice A."
	delete(alice.Devices, "d-laptop")
	if err := crdt.PutMember(doc, alice); err != nil {
		t.Fatal(err)
	}
	again, err := crdt.ReadRoster(mustReload(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(alice, again.Members["m-alice"]); diff != "" {
		t.Errorf("after overwrite (-want +got):\n%s", diff)
	}
}

func TestRosterQueries(t *testing.T) {
	alice := sampleMember("m-alice", 1)
	alice.Devices["d-old"] = &crdt.Device{ID: "d-old", Name: "old", PublicKey: pubKey(9), ActorID: "cafe", AddedAt: t0, RevokedAt: ptr(t0.Add(time.Hour))}
	bob := sampleMember("m-bob", 2)
	bob.RemovedAt = ptr(t0.Add(24 * time.Hour))
	carol := sampleMember("m-carol", 3)
	carol.JoinedAt = t0.Add(48 * time.Hour)
	doc := newRoster(t)
	for _, m := range []*crdt.Member{carol, bob, alice} {
		if err := crdt.PutMember(doc, m); err != nil {
			t.Fatal(err)
		}
	}
	r, err := crdt.ReadRoster(mustReload(t, doc))
	if err != nil {
		t.Fatal(err)
	}

	active := []struct {
		name string
		now  time.Time
		want []string
	}{
		{"before anyone", t0.Add(-time.Second), nil},
		{"at start", t0, []string{"m-alice", "m-bob"}},
		{"bob removed", t0.Add(24 * time.Hour), []string{"m-alice"}},
		{"carol joined", t0.Add(48 * time.Hour), []string{"m-alice", "m-carol"}},
	}
	for _, tt := range active {
		t.Run("Active/"+tt.name, func(t *testing.T) {
			var got []string
			for _, m := range r.Active(tt.now) {
				got = append(got, m.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Active() (-want +got):\n%s", diff)
			}
		})
	}

	lookups := []struct {
		actor           string
		member, device  string
		ok, activeLater bool
	}{
		{strings.Repeat("1", 32), "m-alice", "d-m-alice", true, true},
		{strings.Repeat("2", 32), "m-bob", "d-m-bob", true, true},
		{"CAFE", "m-alice", "d-old", true, false},
		{"beef", "", "", false, false},
	}
	for _, tt := range lookups {
		t.Run("DeviceByActor/"+tt.actor, func(t *testing.T) {
			m, d, ok := r.DeviceByActor(tt.actor)
			if ok != tt.ok {
				t.Fatalf("DeviceByActor() ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if m.ID != tt.member || d.ID != tt.device {
				t.Errorf("DeviceByActor() = %s/%s, want %s/%s", m.ID, d.ID, tt.member, tt.device)
			}
			if got := d.ActiveAt(t0.Add(2 * time.Hour)); got != tt.activeLater {
				t.Errorf("ActiveAt(t0+2h) = %v, want %v", got, tt.activeLater)
			}
		})
	}
}

func TestMemberValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*crdt.Member)
		field string
	}{
		{"bad id", func(m *crdt.Member) { m.ID = "m alice" }, `"id"`},
		{"empty name", func(m *crdt.Member) { m.Name = "" }, `"name"`},
		{"long name", func(m *crdt.Member) { m.Name = strings.Repeat("n", 101) }, `"name"`},
		{"zero joined_at", func(m *crdt.Member) { m.JoinedAt = time.Time{} }, `"joined_at"`},
		{"removed in 1980", func(m *crdt.Member) { m.RemovedAt = ptr(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) }, `"removed_at"`},
		{"bad ledger id", func(m *crdt.Member) { m.Ledgers = append(m.Ledgers, "not-a-doc") }, `"ledgers"`},
		{"bad ballots id", func(m *crdt.Member) { m.Ballots = "xyz" }, `"ballots"`},
		{"device key mismatch", func(m *crdt.Member) { m.Devices["other"] = m.Devices["d-"+m.ID] }, `"devices"`},
		{"short public key", func(m *crdt.Member) { m.Devices["d-"+m.ID].PublicKey = []byte{1, 2, 3} }, `"public_key"`},
		{"actor id uppercase", func(m *crdt.Member) { m.Devices["d-"+m.ID].ActorID = "ABCD" }, `"actor_id"`},
		{"actor id odd length", func(m *crdt.Member) { m.Devices["d-"+m.ID].ActorID = "abc" }, `"actor_id"`},
		{"actor id not hex", func(m *crdt.Member) { m.Devices["d-"+m.ID].ActorID = "zz" }, `"actor_id"`},
		{"device without name", func(m *crdt.Member) { m.Devices["d-"+m.ID].Name = " " }, `"name"`},
		{"device zero added_at", func(m *crdt.Member) { m.Devices["d-"+m.ID].AddedAt = time.Time{} }, `"added_at"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleMember("m-alice", 1)
			tt.edit(m)
			wantRuleError(t, m.Validate(), "schema", tt.field)
			doc := newRoster(t)
			wantRuleError(t, crdt.PutMember(doc, m), "schema", tt.field)
			if r, err := crdt.ReadRoster(doc); err != nil || len(r.Members) != 0 {
				t.Errorf("after refused PutMember, ReadRoster() = %d members, %v, want 0, nil", len(r.Members), err)
			}
		})
	}
	if err := crdt.PutMember(automerge.New(), sampleMember("m-x", 1)); !errors.Is(err, crdt.ErrNotInitialized) {
		t.Errorf("PutMember(empty doc) = %v, want ErrNotInitialized", err)
	}
}

func TestRoleAndMandate(t *testing.T) {
	bad := []struct {
		name  string
		err   error
		field string
	}{
		{"role short term", (&crdt.Role{ID: "r", Name: "n", Term: time.Minute, TermLimit: 1}).Validate(), `"term"`},
		{"role zero limit", (&crdt.Role{ID: "r", Name: "n", Term: time.Hour}).Validate(), `"term_limit"`},
		{"role bad holder", (&crdt.Role{ID: "r", Name: "n", Term: time.Hour, TermLimit: 1, Holder: "a b"}).Validate(), `"holder"`},
		{"mandate no issue", (&crdt.Mandate{ID: "m", Member: "x", Deadline: t0, GrantedAt: t0, Status: "active"}).Validate(), `"issue"`},
		{"mandate bad status", (&crdt.Mandate{ID: "m", Member: "x", Issue: "i", Deadline: t0, GrantedAt: t0, Status: "paused"}).Validate(), `"status"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) { wantRuleError(t, tt.err, "schema", tt.field) })
	}
	m := &crdt.Mandate{ID: "m", Member: "x", Issue: "i", Deadline: t0, GrantedAt: t0.Add(-time.Hour), Status: crdt.MandateActive}
	status := []struct {
		now  time.Time
		want string
	}{{t0.Add(-time.Second), crdt.MandateActive}, {t0, crdt.MandateExpired}}
	for _, tt := range status {
		if got := m.StatusAt(tt.now); got != tt.want {
			t.Errorf("StatusAt(%v) = %q, want %q", tt.now, got, tt.want)
		}
	}
	m.Status = crdt.MandateRecalled
	if got := m.StatusAt(t0); got != crdt.MandateRecalled {
		t.Errorf("recalled StatusAt() = %q, want recalled", got)
	}
}

func TestReadRosterWrongShapes(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(doc *automerge.Doc) error
		field string
	}{
		{"members a string", func(d *automerge.Doc) error { return d.RootMap().Set("members", "x") }, `"members"`},
		{"member a number", func(d *automerge.Doc) error { return d.Path("members", "m-a").Set(1.0) }, `"m-a"`},
		{"public key not base64", func(d *automerge.Doc) error {
			return d.Path("members", "m-alice", "devices", "d-m-alice", "public_key").Set("!!!")
		}, `"public_key"`},
		{"joined_at a bool", func(d *automerge.Doc) error { return d.Path("members", "m-alice", "joined_at").Set(true) }, `"joined_at"`},
		{"ledgers a map", func(d *automerge.Doc) error { return d.Path("members", "m-alice", "ledgers").Set(map[string]any{}) }, `"ledgers"`},
		{"member key differs", func(d *automerge.Doc) error { return d.Path("members", "m-alice", "id").Set("m-eve") }, "differs"},
		{"role term bad", func(d *automerge.Doc) error {
			return d.Path("roles", "r").Set(map[string]any{"id": "r", "name": "n", "term": "long", "term_limit": int64(1)})
		}, `"term"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := newRoster(t)
			if err := crdt.PutMember(doc, sampleMember("m-alice", 1)); err != nil {
				t.Fatal(err)
			}
			if err := tt.edit(doc); err != nil {
				t.Fatal(err)
			}
			_, err := crdt.ReadRoster(mustReload(t, doc))
			wantRuleError(t, err, "schema", tt.field)
		})
	}
}
