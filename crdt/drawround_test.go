package crdt_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/circles-coop/circles/crdt"
)

func TestDrawPickN(t *testing.T) {
	seed := []byte("0123456789abcdef0123456789abcdef")
	cands := []string{"m_c", "m_a", "m_d", "m_b"}
	got := crdt.DrawPickN(seed, cands, 2)
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("DrawPickN = %v, want two distinct members", got)
	}
	if again := crdt.DrawPickN(seed, []string{"m_b", "m_d", "m_a", "m_c", "m_a"}, 2); !slices.Equal(again, got) {
		t.Errorf("DrawPickN depends on the order or repeats of the candidates: %v, then %v", got, again)
	}
	if all := crdt.DrawPickN(seed, cands, 9); len(all) != 4 {
		t.Errorf("DrawPickN(n > candidates) = %v, want all 4", all)
	}
	if none := crdt.DrawPickN(seed, nil, 2); len(none) != 0 {
		t.Errorf("DrawPickN(no candidates) = %v", none)
	}
	// Over many seeds every candidate is picked first now and then.
	first := map[string]int{}
	for i := range 400 {
		s := []byte{byte(i), byte(i >> 8)}
		first[crdt.DrawPickN(s, cands, 1)[0]]++
	}
	for _, c := range cands {
		if first[c] < 50 {
			t.Errorf("%s picked first %d times of 400, want about 100", c, first[c])
		}
	}
}

// roundLog builds the audit log of one draw among the members of c: two
// commit and reveal, one commits and withholds.
type roundLog struct {
	c       *resetCircle
	open    crdt.DrawRoundOpen
	values  map[string][]byte
	entries []crdt.AuditEntry
}

func (l *roundLog) add(tb testing.TB, at time.Time, kind string, data any) {
	tb.Helper()
	var prev *crdt.AuditEntry
	if n := len(l.entries); n > 0 {
		prev = &l.entries[n-1]
	}
	e, err := crdt.NewAuditEntry(prev, at, kind, data)
	if err != nil {
		tb.Fatal(err)
	}
	l.entries = append(l.entries, e)
}

func (l *roundLog) commitment(tb testing.TB, m, draw string, at time.Time) crdt.DrawRoundCommitment {
	tb.Helper()
	com := crdt.DrawValueCommitment(l.c.id, draw, m, l.values[m])
	st, err := crdt.SignDrawCommit(l.c.keys[m], "d_"+m, l.c.id, draw, com, at)
	if err != nil {
		tb.Fatal(err)
	}
	return crdt.DrawRoundCommitment{Draw: l.open.Draw, Member: m, Device: "d_" + m, Commitment: com, Statement: st, At: at}
}

func newRoundLog(tb testing.TB) *roundLog {
	tb.Helper()
	t0 := time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)
	c := newResetCircle(tb, 3, t0.Add(-30*24*time.Hour))
	l := &roundLog{c: c, values: map[string][]byte{}}
	server := []byte(strings.Repeat("s", 32))
	l.open = crdt.DrawRoundOpen{
		Draw: "pair-audit:2027-Q1", Purpose: "auditors", Candidates: c.members(), Picks: 2,
		ServerCommitment: crdt.DrawCommitment(server), OpenedAt: t0, CommitBy: t0.Add(24 * time.Hour), RevealBy: t0.Add(48 * time.Hour),
	}
	l.add(tb, t0, crdt.AuditDrawOpened, l.open)
	for i, m := range c.members() {
		l.values[m] = []byte(strings.Repeat(string(rune('a'+i)), 32))
		l.add(tb, t0.Add(time.Hour), crdt.AuditDrawCommitment, l.commitment(tb, m, l.open.Draw, t0.Add(time.Hour)))
	}
	reveals := map[string][]byte{}
	for _, m := range c.members()[:2] {
		reveals[m] = l.values[m]
		l.add(tb, t0.Add(30*time.Hour), crdt.AuditDrawReveal, crdt.DrawRoundReveal{Draw: l.open.Draw, Member: m, Value: hex.EncodeToString(l.values[m]), At: t0.Add(30 * time.Hour)})
	}
	res := crdt.CloseDrawRound(c.id, l.open, server, c.members(), reveals, t0.Add(49*time.Hour))
	l.add(tb, t0.Add(49*time.Hour), crdt.AuditDrawClosed, res)
	return l
}

// TestVerifyAuditRounds: a draw's log verifies; each way a server could
// bend it after the fact does not, even with the hash chain redone.
func TestVerifyAuditRounds(t *testing.T) {
	l := newRoundLog(t)
	if err := crdt.VerifyAuditRounds(l.entries, l.c.roster, l.c.id); err != nil {
		t.Fatalf("VerifyAuditRounds(genuine) = %v", err)
	}
	var res crdt.DrawRoundResult
	_ = json.Unmarshal(l.entries[len(l.entries)-1].Data, &res)
	if len(res.Withheld) != 1 || len(res.Revealed) != 2 || res.ServerOnly {
		t.Fatalf("result = %+v, want 2 revealed and 1 withheld", res)
	}
	t0 := l.open.OpenedAt
	m := l.c.members()
	cases := []struct {
		name  string
		build func(l *roundLog)
		says  string
	}{
		{"a reveal recorded after the close", func(l *roundLog) {
			l.add(t, t0.Add(50*time.Hour), crdt.AuditDrawReveal, crdt.DrawRoundReveal{Draw: l.open.Draw, Member: m[2], Value: hex.EncodeToString(l.values[m[2]]), At: t0.Add(47 * time.Hour)})
		}, "after it closed"},
		{"a commitment after commit_by", func(l *roundLog) {
			l.entries = l.entries[:1]
			l.add(t, t0.Add(25*time.Hour), crdt.AuditDrawCommitment, l.commitment(t, m[0], l.open.Draw, t0.Add(25*time.Hour)))
		}, "after commit_by"},
		{"a commitment made for another draw", func(l *roundLog) {
			l.entries = l.entries[:1]
			l.add(t, t0.Add(time.Hour), crdt.AuditDrawCommitment, l.commitment(t, m[0], "role:x", t0.Add(time.Hour)))
		}, "does not say what the entry records"},
		{"a reveal in the commit phase", func(l *roundLog) {
			l.entries = l.entries[:4]
			l.add(t, t0.Add(2*time.Hour), crdt.AuditDrawReveal, crdt.DrawRoundReveal{Draw: l.open.Draw, Member: m[0], Value: hex.EncodeToString(l.values[m[0]]), At: t0.Add(2 * time.Hour)})
		}, "outside the reveal phase"},
		{"a reveal that does not match", func(l *roundLog) {
			l.entries = l.entries[:4]
			l.add(t, t0.Add(30*time.Hour), crdt.AuditDrawReveal, crdt.DrawRoundReveal{Draw: l.open.Draw, Member: m[0], Value: hex.EncodeToString(l.values[m[1]]), At: t0.Add(30 * time.Hour)})
		}, "does not match its commitment"},
		{"a close before the reveal deadline", func(l *roundLog) {
			last := l.entries[len(l.entries)-1]
			l.entries = l.entries[:len(l.entries)-1]
			l.add(t, t0.Add(40*time.Hour), crdt.AuditDrawClosed, json.RawMessage(last.Data))
		}, "before its reveal deadline"},
		{"a draw opened twice", func(l *roundLog) {
			l.add(t, t0.Add(50*time.Hour), crdt.AuditDrawOpened, l.open)
		}, "opened twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := newRoundLog(t)
			bad.c, bad.values = l.c, l.values
			bad.entries = slices.Clone(l.entries)
			tc.build(bad)
			if err := crdt.VerifyAudit(bad.entries); err != nil {
				t.Fatalf("the chain itself does not hold: %v", err)
			}
			err := crdt.VerifyAuditRounds(bad.entries, l.c.roster, l.c.id)
			if !errors.Is(err, crdt.ErrAuditBroken) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("VerifyAuditRounds = %v, want %q", err, tc.says)
			}
		})
	}
}

// TestParseDrawCommit: a commitment counts only as what it is — signed by
// the device it names, for this circle, with exactly its claims — and a
// reset statement or a token assertion never passes for one.
func TestParseDrawCommit(t *testing.T) {
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newResetCircle(t, 2, at.Add(-time.Hour))
	com := strings.Repeat("ab", 32)
	good, err := crdt.SignDrawCommit(c.keys["m_aa"], "d_m_aa", c.id, "draw:1", com, at)
	if err != nil {
		t.Fatal(err)
	}
	got, err := crdt.ParseDrawCommit(good, c.id, c.roster)
	if err != nil || got.Member != "m_aa" || got.Device != "d_m_aa" || got.Draw != "draw:1" || got.Commitment != com {
		t.Fatalf("ParseDrawCommit(genuine) = %+v, %v", got, err)
	}
	if crdt.CheckAssertionClaims(good) == nil {
		t.Errorf("a commitment passes for a token assertion")
	}
	claims := func(extra map[string]any) jwt.MapClaims {
		m := jwt.MapClaims{"typ": crdt.DrawCommitTyp, "iss": "d_m_aa", "aud": c.id, "draw": "draw:1", "commitment": com, "iat": at.Unix()}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	for _, tc := range []struct {
		name, statement, says string
	}{
		{"a reset statement", c.sign(t, "m_aa", 0, "j1", at), "epoch"}, // its first claim a commitment lacks, in name order
		{"another circle", c.signClaims(t, "m_aa", claims(map[string]any{"aud": "circle2"}), nil), "aud"},
		{"another typ", c.signClaims(t, "m_aa", claims(map[string]any{"typ": "reset"}), nil), "typ"},
		{"an extra claim", c.signClaims(t, "m_aa", claims(map[string]any{"exp": at.Unix() + 60}), nil), "exp"},
		{"no draw", c.signClaims(t, "m_aa", claims(map[string]any{"draw": nil}), nil), "draw"},
		{"a short commitment", c.signClaims(t, "m_aa", claims(map[string]any{"commitment": "abcd"}), nil), "commitment"},
		{"iss not the device", c.signClaims(t, "m_aa", claims(map[string]any{"iss": "d_m_ba"}), nil), "iss"},
		{"garbage", "x.y.z", "does not verify"},
	} {
		_, err := crdt.ParseDrawCommit(tc.statement, c.id, c.roster)
		wantRuleError(t, err, crdt.RuleDraw, tc.says)
	}
}

func FuzzParseDrawCommit(f *testing.F) {
	at := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newResetCircle(f, 2, at.Add(-time.Hour))
	good, _ := crdt.SignDrawCommit(c.keys["m_aa"], "d_m_aa", c.id, "draw:1", strings.Repeat("ab", 32), at)
	f.Add(good)
	f.Add(c.sign(f, "m_aa", 0, "j1", at))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, statement string) {
		got, err := crdt.ParseDrawCommit(statement, c.id, c.roster)
		if err != nil {
			var re *crdt.RuleError
			if !errors.As(err, &re) {
				t.Fatalf("ParseDrawCommit error %v is not a *RuleError", err)
			}
			return
		}
		m, ok := c.roster.Members[got.Member]
		if !ok || m.Devices[got.Device] == nil || got.Statement != statement || !crdt.IsDrawID(got.Draw) || len(got.Commitment) != 64 {
			t.Fatalf("ParseDrawCommit accepted %+v", got)
		}
		if crdt.CheckAssertionClaims(statement) == nil {
			t.Fatalf("a statement ParseDrawCommit accepts also passes for a token assertion: %q", statement)
		}
	})
}

func TestPairMentorships(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ms []*crdt.Member
	for i, id := range []string{"m_e", "m_a", "m_d", "m_b", "m_c"} { // joined: e first, then a, d, b, c
		ms = append(ms, &crdt.Member{ID: id, JoinedAt: t0.Add(time.Duration(i) * 24 * time.Hour)})
	}
	pairs, unpaired := crdt.PairMentorships(ms)
	want := []struct{ mentor, apprentice string }{{"m_c", "m_e"}, {"m_b", "m_a"}}
	if len(pairs) != 2 || !slices.Equal(unpaired, []string{"m_d"}) {
		t.Fatalf("PairMentorships = %+v, unpaired %v", pairs, unpaired)
	}
	for i, w := range want {
		if pairs[i].Mentor != w.mentor || pairs[i].Apprentice != w.apprentice {
			t.Errorf("pair %d = %+v, want %s mentoring %s", i, pairs[i], w.mentor, w.apprentice)
		}
	}
	if p, u := crdt.PairMentorships(ms[:4]); len(p) != 2 || len(u) != 0 {
		t.Errorf("four members: %+v, unpaired %v; want two pairs", p, u)
	}
}

func TestCalendarDue(t *testing.T) {
	founded := time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		id   string
		due  bool
		year string
		ann  bool
	}{
		{founded.Add(time.Hour), "", false, "", false},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC), "", false, "", false},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "pair-audit:2027-Q1", true, "", false},
		{time.Date(2027, 11, 30, 20, 0, 0, 0, time.UTC), "pair-audit:2027-Q4", true, "", false},
		{time.Date(2027, 11, 30, 21, 0, 0, 0, time.UTC), "pair-audit:2027-Q4", true, "2027", true},
		{time.Date(2029, 2, 1, 0, 0, 0, 0, time.UTC), "pair-audit:2029-Q1", true, "2028", true},
	} {
		id, due := crdt.PairAuditDue(founded, tc.now)
		year, ann := crdt.MentorshipDue(founded, tc.now)
		if id != tc.id || due != tc.due || year != tc.year || ann != tc.ann {
			t.Errorf("at %s: PairAuditDue = %q %v, MentorshipDue = %q %v; want %q %v, %q %v", tc.now, id, due, year, ann, tc.id, tc.due, tc.year, tc.ann)
		}
	}
}

// BenchmarkVerifyAuditRounds: recomputing one draw of a 30-member circle
// in which every member committed and revealed (30 signature checks).
func BenchmarkVerifyAuditRounds(b *testing.B) {
	t0 := time.Date(2027, 1, 1, 1, 0, 0, 0, time.UTC)
	c := newResetCircle(b, 30, t0.Add(-30*24*time.Hour))
	l := &roundLog{c: c, values: map[string][]byte{}}
	server := []byte(strings.Repeat("s", 32))
	l.open = crdt.DrawRoundOpen{Draw: "d:1", Candidates: c.members(), Picks: 2, ServerCommitment: crdt.DrawCommitment(server),
		OpenedAt: t0, CommitBy: t0.Add(24 * time.Hour), RevealBy: t0.Add(48 * time.Hour)}
	l.add(b, t0, crdt.AuditDrawOpened, l.open)
	reveals := map[string][]byte{}
	for i, m := range c.members() {
		l.values[m] = []byte(strings.Repeat(string(rune('a'+i%26)), 32))
		l.add(b, t0.Add(time.Hour), crdt.AuditDrawCommitment, l.commitment(b, m, "d:1", t0.Add(time.Hour)))
	}
	for _, m := range c.members() {
		reveals[m] = l.values[m]
		l.add(b, t0.Add(30*time.Hour), crdt.AuditDrawReveal, crdt.DrawRoundReveal{Draw: "d:1", Member: m, Value: hex.EncodeToString(l.values[m]), At: t0.Add(30 * time.Hour)})
	}
	l.add(b, t0.Add(49*time.Hour), crdt.AuditDrawClosed, crdt.CloseDrawRound(c.id, l.open, server, c.members(), reveals, t0.Add(49*time.Hour)))
	size := 0
	for _, e := range l.entries {
		size += len(e.Data)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := crdt.VerifyAuditRounds(l.entries, c.roster, c.id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "log-data-bytes/draw")
}
