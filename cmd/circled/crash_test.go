package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/google/uuid"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/mobile-api/client"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/wire"
)

// The crash harness (issue 7): a real circled process takes a mixed load —
// devices syncing new ledger entries, REST entries, proposals and votes
// (role.create, then role.assign, decided by the votes), members and
// devices enrolling, three members signing a hard reset — and is killed
// with SIGKILL at a random moment. It is started again, and the harness
// checks that everything the server acknowledged is there, that the audit
// chain verifies and records every effect exactly once, and that an
// interrupted reset or decision was finished.
//
// CIRCLES_CRASH_TRIALS sets the number of trials (default 3; `make crash`
// runs 100), CIRCLES_CRASH_SEED the first trial's seed (default: the
// time); trial i uses seed+i, printed with its result, so a failing trial
// is replayed with CIRCLES_CRASH_SEED=<its seed> CIRCLES_CRASH_TRIALS=1.
// CIRCLES_CRASH_TARGET (reset, decision, enrolment, proposal, race) makes
// every trial aim its kill at one kind of request.

const (
	// backdate is how long before the harness starts the founding members
	// were enrolled: longer than reset.min_membership (1m, the smallest
	// the policy allows), so their reset signatures count at once.
	backdate = 10 * time.Minute
	// trialBudget bounds one trial, from copying the circle to the last
	// check.
	trialBudget = 3 * time.Minute
	// settleBudget bounds the wait, after the restart, for the work the
	// server finishes in the background (start-time recovery, Tick).
	settleBudget = 45 * time.Second
)

var foundingNames = []string{"Ada", "Bo", "Cy", "Di"}

// template is the circle every trial starts from: a data directory made by
// `circled init`, and the founding members' device homes.
type template struct {
	dir    string // data/ and homes/<name>/
	circle string
}

// prepareTemplate makes a circle with `circled init` (reset.min_membership
// 1m) and enrols the four founding members, each with a client.Device,
// through an in-process server whose clock runs backdate behind: their
// enrolment is then old enough for their reset signatures to count when
// the real circled serves a copy of the circle with the real clock.
// crashArchives are the archive bounds of the served circle in a trial
// (authority/archives.go): far below the defaults.
var crashArchives = []string{"--audit-segment-entries", "4", "--governance-archive-proposals", "2"}

func prepareTemplate(t *testing.T, bin string) *template {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tpl := &template{dir: t.TempDir()}
	data := filepath.Join(tpl.dir, "data")
	var out bytes.Buffer
	init := exec.CommandContext(ctx, bin, "init", "--data", data, "--name", "Crash Circle", "--json", "--policy", "reset.min_membership=1m")
	init.Stdout, init.Stderr = &out, &out
	if err := init.Run(); err != nil {
		t.Fatalf("circled init: %v\n%s", err, out.String())
	}
	var res server.InitResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("init --json printed %q: %v", out.String(), err)
	}
	tpl.circle = res.CircleID

	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.Listen = data, "127.0.0.1:0"
	cfg.Now = func() time.Time { return time.Now().Add(-backdate) }
	s, err := server.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open the template circle: %v", err)
	}
	defer func() {
		if s != nil {
			_ = s.Close()
		}
	}()
	var devs []*client.Device
	invite := res.Invite
	for i, name := range foundingNames {
		if i > 0 {
			inv, err := devs[0].Invite(ctx, false, 0)
			if err != nil {
				t.Fatalf("invite %s: %v", name, err)
			}
			invite = inv.Code
		}
		d, err := client.Join(ctx, filepath.Join(tpl.dir, "homes", name), s.URL(), invite, name, name+"'s phone")
		if err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
		devs = append(devs, d)
	}
	for _, d := range devs { // everyone's copy names every member's ledger
		if _, err := d.Sync(ctx, nil); err != nil {
			t.Fatalf("sync %s: %v", d.Info().MemberName, err)
		}
	}
	err = s.Close()
	s = nil
	if err != nil {
		t.Fatalf("close the template circle: %v", err)
	}
	return tpl
}

func crashEnvInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err == nil {
			return n
		}
	}
	return def
}

// TestCrashConsistency runs the crash trials.
func TestCrashConsistency(t *testing.T) {
	trials := int(crashEnvInt("CIRCLES_CRASH_TRIALS", 3))
	seed := crashEnvInt("CIRCLES_CRASH_SEED", time.Now().UnixNano()%1_000_000_000)
	if trials < 1 || trials > 1000 {
		t.Fatalf("CIRCLES_CRASH_TRIALS=%d: want 1 to 1000", trials)
	}
	bin := buildCircled(t)
	tpl := prepareTemplate(t, bin)
	t.Logf("crash harness: %d trials from seed %d", trials, seed)

	var reports []*trialReport
	failed := []int64{}
	for i := 0; i < trials; i++ {
		s := seed + int64(i)
		rep := &trialReport{seed: s}
		ok := t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			runTrial(t, bin, tpl, rep)
		})
		rep.ok = ok
		reports = append(reports, rep)
		if !ok {
			failed = append(failed, s)
		}
		fmt.Printf("crash trial %d/%d %s\n", i+1, trials, rep)
	}
	summarize(t, reports)
	acks := 0
	for _, r := range reports {
		acks += r.restEntries + r.synced + r.votes
	}
	if acks == 0 {
		t.Errorf("no trial had anything acknowledged before its kill: the harness proved nothing")
	}
	if len(failed) > 0 {
		t.Errorf("failed seeds (replay one with CIRCLES_CRASH_SEED=<seed> CIRCLES_CRASH_TRIALS=1): %v", failed)
	}
	fmt.Printf("crash: %d passed, %d failed\n", trials-len(failed), len(failed))
}

// trialReport is what one trial did, for the summary.
type trialReport struct {
	seed                 int64
	ok                   bool
	took                 time.Duration
	killAt, resetAt      time.Duration
	target               string
	aimedAt              time.Duration // when the aimed request was sent; 0 if it never was
	aimTook              time.Duration // how long it took, if it was answered before the kill
	restEntries, synced  int
	enrolled, votes      int
	proposals, resetSigs int
	epoch                int64
	// govArchives and auditArchives count the documents the circle had
	// moved on from (GET /v1/circle after the restart).
	govArchives, auditArchives int
	// What the restarted server finished, as its audit log and its log
	// tell.
	interrupted []string
}

func (r *trialReport) String() string {
	res := "ok"
	if !r.ok {
		res = "FAILED"
	}
	what := "nothing"
	if len(r.interrupted) > 0 {
		what = strings.Join(r.interrupted, ", ")
	}
	aim := "random moment"
	if r.aimedAt > 0 {
		aim = fmt.Sprintf("%v after a %s request was sent", (r.killAt - r.aimedAt).Round(time.Millisecond), r.target)
		if r.aimTook > 0 {
			aim += fmt.Sprintf(", answered in %v", r.aimTook.Round(100*time.Microsecond))
		} else {
			aim += ", not answered"
		}
	}
	return fmt.Sprintf("seed=%d %s in %.1fs: kill at %v (%s; reset signed from %v); acknowledged %d REST + %d synced entries, %d enrolments, %d votes, %d proposals, %d reset signatures; epoch %d, %d governance archives and %d audit segments archived after restart; finished after restart: %s",
		r.seed, res, r.took.Seconds(), r.killAt.Round(time.Millisecond), aim, r.resetAt.Round(time.Millisecond),
		r.restEntries, r.synced, r.enrolled, r.votes, r.proposals, r.resetSigs, r.epoch, r.govArchives, r.auditArchives, what)
}

func summarize(t *testing.T, reports []*trialReport) {
	var total time.Duration
	kinds := map[string]int{}
	for _, r := range reports {
		total += r.took
		if len(r.interrupted) == 0 {
			kinds["nothing left to finish"]++
		}
		for _, k := range r.interrupted {
			kinds[k]++
		}
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "\n  %4d  %s", kinds[k], k)
	}
	msg := fmt.Sprintf("crash summary: %d trials, mean trial %.1fs; what the restarted server found to finish (trials):%s",
		len(reports), (total / time.Duration(len(reports))).Seconds(), b.String())
	t.Log(msg)
	fmt.Println(msg)
}

// acked is what the server acknowledged before the kill.
type acked struct {
	mu          sync.Mutex
	restEntries []string
	synced      []string
	enrolled    []*member
	votes       []ackVote
	proposals   []ackProposal
	resetSigs   []string // members whose signature was acknowledged
	resetDone   bool     // a signature's answer said the reset executed
}

type ackVote struct {
	proposal, member, choice string
	ballots                  bool // written into the ballots document and synced
}

type ackProposal struct {
	id, kind string
	role     string // role.create: the role's id (= the proposal's); role.assign: the role
	member   string // role.assign: who
}

// trial is one trial's circle and what is known of it.
type trial struct {
	t       *testing.T
	bin     string
	circle  string
	api     *api
	founder []*member // Ada, Bo, Cy, Di
	dir     string

	regMu   sync.Mutex
	members []*member // everyone who may vote: the founders and acknowledged new members

	ack acked

	// target is what the kill aims at: "" (a random moment), "reset" (the
	// last reset signature), "decision" (a deciding vote), "enrolment" or
	// "proposal" (opening one);
	// the load calls aim(what) just before it sends such a request, and
	// the kill follows a random few milliseconds later.
	target string
	round  int // the governance round whose decisions are aimed at
	aimed  chan struct{}
	// raceGo is closed, when the target is "race", just before the vote
	// that decides the role.assign of round `round` is sent: the last
	// reset signature is sent at the same moment.
	raceGo   chan struct{}
	raceOnce sync.Once
	// aimTook is how long the aimed request took, if it was answered.
	aimTook atomic.Int64
}

// aim tells the killer that a request of kind what is about to be sent;
// the function it returns is called once the request was answered, to
// learn how long such a request takes (the window the kill aims at).
func (tr *trial) aim(what string) (answered func()) {
	if tr.target != what {
		return func() {}
	}
	select {
	case tr.aimed <- struct{}{}:
	default:
		return func() {}
	}
	start := time.Now()
	return func() { tr.aimTook.CompareAndSwap(0, int64(time.Since(start))) }
}

func (tr *trial) voters() []*member {
	tr.regMu.Lock()
	defer tr.regMu.Unlock()
	return slices.Clone(tr.members)
}

func runTrial(t *testing.T, bin string, tpl *template, rep *trialReport) {
	start := time.Now()
	defer func() { rep.took = time.Since(start) }()
	ctx, cancel := context.WithTimeout(context.Background(), trialBudget)
	defer cancel()
	rng := mrand.New(mrand.NewPCG(uint64(rep.seed), 7))

	dir := t.TempDir()
	if err := copyTree(tpl.dir, dir); err != nil {
		t.Fatalf("copy the template circle: %v", err)
	}
	data := filepath.Join(dir, "data")
	// Tiny archives: a trial moves the governance document and the audit
	// log on several times, so kills land in the middle of moves too.
	p, err := serve(bin, data, "127.0.0.1:0", append([]string{"--tick-every", "250ms"}, crashArchives...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	tr := &trial{t: t, bin: bin, circle: tpl.circle, api: newAPI(p.addr), dir: dir}
	for _, name := range foundingNames {
		home := filepath.Join(dir, "homes", name)
		if err := pointDevice(home, "http://"+p.addr); err != nil {
			t.Fatal(err)
		}
		dev, err := client.OpenDevice(home)
		if err != nil {
			t.Fatal(err)
		}
		key, err := readDeviceKey(home)
		if err != nil {
			t.Fatal(err)
		}
		info := dev.Info()
		tr.founder = append(tr.founder, &member{name: name, memberID: info.MemberID, deviceID: info.DeviceID, key: key, dev: dev})
	}
	tr.members = slices.Clone(tr.founder)

	// The kill lands at a random moment of the load, or a random few
	// milliseconds after a request of the kind the trial aims at was sent
	// (if it is sent before that moment): the last reset signature, a
	// deciding vote, an enrolment, a new proposal, or the last reset
	// signature sent together with the vote that decides a role.assign
	// ("race"). The windows where work spans several writes are a few
	// milliseconds long; aiming makes kills land in them.
	targets := []string{"", "reset", "decision", "decision", "enrolment", "proposal", "race"}
	tr.target, tr.aimed, tr.raceGo = targets[rng.IntN(len(targets))], make(chan struct{}, 1), make(chan struct{})
	if force := os.Getenv("CIRCLES_CRASH_TARGET"); force != "" { // every trial aims at one kind
		tr.target = force
	}
	rep.killAt = 300*time.Millisecond + time.Duration(rng.Int64N(int64(2700*time.Millisecond)))
	rep.resetAt = time.Duration(rng.Int64N(int64(rep.killAt)))
	tr.round = 2 + rng.IntN(2)
	jitter := time.Duration(rng.Int64N(int64(10 * time.Millisecond)))
	switch tr.target {
	case "reset":
		rep.resetAt /= 2
	case "race":
		// The reset's last signature waits for the race; the kill comes
		// a few milliseconds after it, or (one trial in three) late.
		rep.resetAt = 0
		if rng.IntN(3) == 0 {
			tr.target = "race, no kill aimed"
			rep.killAt = 2*time.Second + time.Duration(rng.Int64N(int64(time.Second)))
		}
	}
	rep.target = tr.target

	loadStart := time.Now()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(name string, k uint64, fn func(ctx context.Context, rng *mrand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(loadCtx, mrand.New(mrand.NewPCG(uint64(rep.seed), k)))
		}()
	}
	for i, m := range tr.founder {
		run("sync", uint64(10+i), func(ctx context.Context, rng *mrand.Rand) { tr.syncLoad(ctx, rng, m) })
	}
	for i := 0; i < 2; i++ {
		run("rest", uint64(20+i), tr.restLoad)
	}
	run("governance", 30, tr.governanceLoad)
	run("enrol", 31, tr.enrolLoad)
	run("reset", 32, func(ctx context.Context, rng *mrand.Rand) { tr.resetLoad(ctx, rng, rep.resetAt) })

	select {
	case <-time.After(rep.killAt):
	case <-tr.aimed:
		rep.aimedAt = time.Since(loadStart)
		time.Sleep(jitter)
	case <-ctx.Done():
	}
	rep.killAt = time.Since(loadStart)
	p.kill()
	stopLoad()
	wg.Wait()
	rep.aimTook = time.Duration(tr.aimTook.Load())
	killLog := p.logs.String()

	tr.ack.mu.Lock()
	rep.restEntries, rep.synced, rep.enrolled = len(tr.ack.restEntries), len(tr.ack.synced), len(tr.ack.enrolled)
	rep.votes, rep.proposals, rep.resetSigs = len(tr.ack.votes), len(tr.ack.proposals), len(tr.ack.resetSigs)
	tr.ack.mu.Unlock()
	if rep.restEntries+rep.synced == 0 {
		t.Logf("no entry was acknowledged before the kill")
	}

	restarted := time.Now()
	p2, err := serve(bin, data, "127.0.0.1:0", append([]string{"--tick-every", "200ms"}, crashArchives...)...)
	if err != nil {
		t.Fatalf("restart after kill -9: %v\nlog before the kill:\n%s", err, tailOf(killLog, 30))
	}
	defer p2.stop()
	tr.api = newAPI(p2.addr)
	for _, m := range tr.voters() {
		m.mu.Lock()
		m.token = "" // same key, but ask the new process anyway
		m.mu.Unlock()
	}

	// The restarted server finishes some work in the background (start-time
	// recovery, its Tick); the checks are repeated until they all hold or
	// settleBudget passes.
	deadline := time.Now().Add(settleBudget)
	var problems []string
	var st *state
	for {
		st, problems = tr.check(ctx)
		if len(problems) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if st != nil {
		rep.epoch = st.epoch
		if a := st.circle.Archives; a != nil {
			rep.govArchives, rep.auditArchives = len(a.Governance), len(a.Audit)
		}
		rep.interrupted = st.finished(restarted)
	}
	for _, pr := range problems {
		t.Error(pr)
	}
	if t.Failed() {
		t.Logf("log before the kill (tail):\n%s\nlog after the restart (tail):\n%s", tailOf(killLog, 40), p2.logs.tail(60))
	}
}

func tailOf(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pause waits d or until ctx ends; it reports whether to go on.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// syncLoad logs entries on a founding member's device and syncs them;
// the entries logged before a sync that finished are acknowledged.
func (tr *trial) syncLoad(ctx context.Context, rng *mrand.Rand, m *member) {
	var pending []string
	for i := 0; i < 40 && ctx.Err() == nil; i++ {
		for n := 1 + rng.IntN(3); n > 0; n-- {
			e, err := m.dev.Log(crdt.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, Note: "synced in the crash test", At: time.Now().UTC()})
			if err != nil {
				tr.t.Errorf("log on %s's device: %v", m.name, err)
				return
			}
			pending = append(pending, e.ID)
		}
		if _, err := m.dev.Sync(ctx, nil); err == nil {
			tr.ack.mu.Lock()
			tr.ack.synced = append(tr.ack.synced, pending...)
			tr.ack.mu.Unlock()
			pending = nil
		}
		if !pause(ctx, time.Duration(20+rng.IntN(80))*time.Millisecond) {
			return
		}
	}
}

// restLoad writes entries by REST as random members, with ids the client
// made.
func (tr *trial) restLoad(ctx context.Context, rng *mrand.Rand) {
	for i := 0; i < 400 && ctx.Err() == nil; i++ {
		vs := tr.voters()
		m := vs[rng.IntN(len(vs))]
		id := uuid.NewString()
		e := wire.Entry{ID: id, Kind: "meal", Quantity: 1, Note: "REST in the crash test", At: time.Now().UTC()}
		if err := tr.api.as(ctx, tr.circle, m, "POST", "/v1/ledger/entries", e, nil); err == nil {
			tr.ack.mu.Lock()
			tr.ack.restEntries = append(tr.ack.restEntries, id)
			tr.ack.mu.Unlock()
		}
		if !pause(ctx, time.Duration(5+rng.IntN(20))*time.Millisecond) {
			return
		}
	}
}

// governanceLoad creates roles and assigns them, each by a proposal that
// every member votes for (REST; Di sometimes through the ballots
// document), so that it passes as soon as the last vote is counted.
func (tr *trial) governanceLoad(ctx context.Context, rng *mrand.Rand) {
	ada := tr.founder[0]
	for r := 1; r <= 4 && ctx.Err() == nil; r++ {
		create := wire.ProposalRequest{ID: uuid.NewString(), Kind: crdt.ProposalRoleCreate, Title: fmt.Sprintf("Role %d", r),
			Payload: map[string]any{"name": fmt.Sprintf("role %d", r), "purpose": "holds something for the crash test", "term": "2160h", "term_limit": 2}}
		if !tr.propose(ctx, ada, create, ackProposal{id: create.ID, kind: create.Kind, role: create.ID}) {
			return
		}
		if tr.voteAll(ctx, rng, create.ID, r, false) != crdt.ProposalPassed {
			continue
		}
		holder := tr.founder[rng.IntN(len(tr.founder))]
		assign := wire.ProposalRequest{ID: uuid.NewString(), Kind: crdt.ProposalRoleAssign, Title: fmt.Sprintf("%s holds role %d", holder.name, r),
			Payload: map[string]any{"role": create.ID, "member": holder.memberID}}
		if !tr.propose(ctx, ada, assign, ackProposal{id: assign.ID, kind: assign.Kind, role: create.ID, member: holder.memberID}) {
			return
		}
		tr.voteAll(ctx, rng, assign.ID, r, true)
	}
}

func (tr *trial) propose(ctx context.Context, by *member, req wire.ProposalRequest, a ackProposal) bool {
	tr.ack.mu.Lock()
	round := len(tr.ack.proposals)/2 + 1 // two proposals a round
	tr.ack.mu.Unlock()
	answered := func() {}
	if round == tr.round {
		answered = tr.aim("proposal")
	}
	if err := tr.api.as(ctx, tr.circle, by, "POST", "/v1/proposals", req, nil); err != nil {
		return false
	}
	answered()
	tr.ack.mu.Lock()
	tr.ack.proposals = append(tr.ack.proposals, a)
	tr.ack.mu.Unlock()
	return true
}

// voteAll has every known member vote yes on proposal id until it is
// decided (or the passes run out); it returns its last known status.
func (tr *trial) voteAll(ctx context.Context, rng *mrand.Rand, id string, round int, assign bool) string {
	ballotsTried := false
	status := crdt.ProposalOpen
	for pass := 0; pass < 6 && ctx.Err() == nil; pass++ {
		var p wire.Proposal
		if err := tr.api.as(ctx, tr.circle, tr.founder[0], "GET", "/v1/proposals/"+url.PathEscape(id), nil, &p); err != nil {
			return status
		}
		if status = p.Status; status != crdt.ProposalOpen {
			return status
		}
		vs := tr.voters()
		left := 0
		for _, m := range vs {
			if _, voted := p.Votes[m.memberID]; !voted {
				left++
			}
		}
		for _, m := range vs {
			if _, voted := p.Votes[m.memberID]; voted || ctx.Err() != nil {
				continue
			}
			answered := func() {}
			if left--; left == 0 && round == tr.round {
				answered = tr.aim("decision")
				if assign && strings.HasPrefix(tr.target, "race") {
					tr.raceOnce.Do(func() {
						answered = tr.aim("race")
						close(tr.raceGo)
					})
				}
			}
			if m.dev != nil && m.name == "Di" && !ballotsTried && rng.IntN(2) == 0 {
				ballotsTried = true
				if _, err := m.dev.Vote(id, "yes", "", time.Now()); err != nil {
					tr.t.Errorf("vote on Di's device: %v", err)
					continue
				}
				if _, err := m.dev.Sync(ctx, nil); err == nil {
					answered()
					tr.addVote(ackVote{proposal: id, member: m.memberID, choice: "yes", ballots: true})
				}
				continue
			}
			var after wire.Proposal
			if err := tr.api.as(ctx, tr.circle, m, "POST", "/v1/proposals/"+url.PathEscape(id)+"/votes", wire.VoteRequest{Choice: "yes"}, &after); err == nil {
				answered()
				tr.addVote(ackVote{proposal: id, member: m.memberID, choice: "yes"})
				status = after.Status
			}
		}
		if status != crdt.ProposalOpen || !pause(ctx, 30*time.Millisecond) {
			return status
		}
	}
	return status
}

func (tr *trial) addVote(v ackVote) {
	tr.ack.mu.Lock()
	tr.ack.votes = append(tr.ack.votes, v)
	tr.ack.mu.Unlock()
}

// enrolLoad enrols new members (raw HTTP and client.Join, alternately)
// and a second device of Bo's, each with an invite Ada makes.
func (tr *trial) enrolLoad(ctx context.Context, rng *mrand.Rand) {
	ada, bo := tr.founder[0], tr.founder[1]
	for i := 0; i < 5 && ctx.Err() == nil; i++ {
		if !pause(ctx, time.Duration(50+rng.IntN(250))*time.Millisecond) {
			return
		}
		forWhat, by := "member", ada
		if i == 2 {
			forWhat, by = "device", bo
		}
		var inv wire.InviteResponse
		if err := tr.api.as(ctx, tr.circle, by, "POST", "/v1/invites", wire.InviteRequest{For: forWhat}, &inv); err != nil {
			continue
		}
		name := fmt.Sprintf("Newcomer %d", i)
		answered := tr.aim("enrolment")
		var m *member
		if i%2 == 1 {
			home := filepath.Join(tr.dir, "homes", fmt.Sprintf("new-%d", i))
			dev, err := client.Join(ctx, home, tr.api.base, inv.Code, name, "phone")
			if dev == nil {
				_ = err
				continue // not enrolled (or not acknowledged)
			}
			key, kerr := readDeviceKey(home)
			if kerr != nil {
				tr.t.Errorf("read %s's key: %v", name, kerr)
				continue
			}
			info := dev.Info()
			m = &member{name: name, memberID: info.MemberID, deviceID: info.DeviceID, key: key}
		} else {
			pub, key, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				tr.t.Error(err)
				return
			}
			req := wire.EnrollRequest{Invite: inv.Code, MemberName: name, DeviceName: "raw phone", PublicKey: pub, ActorID: automerge.NewActorID()}
			var er wire.EnrollResponse
			if err := tr.api.do(ctx, "POST", "/v1/enroll", "", req, &er); err != nil {
				continue
			}
			m = &member{name: name, memberID: er.MemberID, deviceID: er.DeviceID, key: key, token: er.AccessToken}
		}
		answered()
		tr.ack.mu.Lock()
		tr.ack.enrolled = append(tr.ack.enrolled, m)
		tr.ack.mu.Unlock()
		if forWhat == "member" {
			tr.regMu.Lock()
			tr.members = append(tr.members, m)
			tr.regMu.Unlock()
		}
	}
}

// resetLoad has Bo, Cy and Di sign a hard reset, from at on, each by REST
// or through their ballots document and a sync.
func (tr *trial) resetLoad(ctx context.Context, rng *mrand.Rand, at time.Duration) {
	if !pause(ctx, at) {
		return
	}
	signers := slices.Clone(tr.founder[1:])
	rng.Shuffle(len(signers), func(i, j int) { signers[i], signers[j] = signers[j], signers[i] })
	for i, m := range signers {
		if ctx.Err() != nil {
			return
		}
		answered := func() {}
		last := i == len(signers)-1
		if last {
			answered = tr.aim("reset")
			if strings.HasPrefix(tr.target, "race") {
				select {
				case <-tr.raceGo:
				case <-ctx.Done():
					return
				}
			}
		}
		if rng.IntN(5) < 3 || (last && strings.HasPrefix(tr.target, "race")) {
			st, err := crdt.SignReset(m.key, m.deviceID, tr.circle, 0, "the crash test resets", uuid.NewString(), time.Now())
			if err != nil {
				tr.t.Errorf("sign reset: %v", err)
				return
			}
			var out wire.ResetStatus
			if err := tr.api.as(ctx, tr.circle, m, "POST", "/v1/resets/signatures", wire.ResetRequest{Statement: st}, &out); err != nil {
				var he *httpError
				if errors.As(err, &he) && he.status != http.StatusServiceUnavailable {
					tr.t.Errorf("%s's reset signature refused: %v", m.name, err)
				}
				continue
			}
			answered()
			tr.ack.mu.Lock()
			tr.ack.resetSigs = append(tr.ack.resetSigs, m.memberID)
			tr.ack.resetDone = tr.ack.resetDone || out.Executed
			tr.ack.mu.Unlock()
			continue
		}
		if _, err := m.dev.SignReset("the crash test resets", time.Now()); err != nil {
			tr.t.Errorf("sign reset on %s's device: %v", m.name, err)
			return
		}
		if _, err := m.dev.Sync(ctx, nil); err == nil {
			answered()
			tr.ack.mu.Lock()
			tr.ack.resetSigs = append(tr.ack.resetSigs, m.memberID)
			tr.ack.mu.Unlock()
		}
	}
}
