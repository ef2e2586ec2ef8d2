package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/authority"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// BenchmarkGovernanceHistory (issue 12, items 3 and 5): one member
// proposing and voting through REST, in a circle whose governance history
// grows: 0, 1,000 and 5,000 decided proposals, and at the last level an
// audit log padded to 50,000 entries. For each level it reports the
// latency of propose+vote (POST /v1/proposals, then POST
// /v1/proposals/{id}/votes, which decides it) and of the vote alone, p50
// and p99 over govBenchRounds proposals (three days of 40), and the
// engine's loaded bytes (circles_sync_loaded_bytes) at most and after,
// against the memory budget.
//
// The history is built fast, through the authority's own methods
// (Governance.Propose and Vote, Audit.Append: every step one change, as
// over REST) with the server's clock moved 30 minutes a proposal (a member
// opens at most 50 proposals a day). Half the proposals are member.admit
// passed (an invite in the KV bucket and a member.admitted audit entry),
// half rejected by a "no" vote. The audit padding is the filler kind
// "bench.filler", one change per entry. Building is not measured.
//
// CIRCLES_GOVBENCH_LEVELS (e.g. "0,1000") chooses the levels;
// CIRCLES_GOVBENCH_AUDIT the audit entries at the last level (default
// 50,000).
func BenchmarkGovernanceHistory(b *testing.B) {
	levels := []int{0, 1000, 5000}
	if s := os.Getenv("CIRCLES_GOVBENCH_LEVELS"); s != "" {
		levels = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 {
				b.Fatalf("CIRCLES_GOVBENCH_LEVELS: %q is not a list of counts", s)
			}
			levels = append(levels, n)
		}
		slices.Sort(levels)
	}
	auditTarget := 50000
	if s := os.Getenv("CIRCLES_GOVBENCH_AUDIT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			b.Fatalf("CIRCLES_GOVBENCH_AUDIT: %q is not a count", s)
		}
		auditTarget = n
	}
	for b.Loop() {
		runGovBench(b, levels, auditTarget)
	}
}

const (
	govBenchRounds = 120              // measured proposals a level
	govBenchPerDay = 40               // of them a day (a member opens at most 50)
	govBenchStep   = 30 * time.Minute // clock step per seeded proposal
	govBenchLimit  = 40 * time.Minute // bound on building one level
)

func runGovBench(b *testing.B, levels []int, auditTarget int) {
	clock := servertest.FixedClock(time.Now().UTC().Truncate(time.Hour))
	var budget int64
	c := servertest.Start(b, "GovernanceHistory", metricsOnAPI, servertest.WithClock(clock.Now), servertest.WithConfig(func(cfg *server.Config) {
		budget = cfg.MemoryBudget
	}))
	h := newBenchHTTP(c.URL())
	defer h.close()
	d := servertest.MustEnroll(b, c.URL(), c.FounderInvite, "Founder")
	auth := c.Server.Authority()
	caller := authority.Caller{Member: d.Member, Device: d.ID, Actor: d.Actor}
	ctx := context.Background()

	var offset time.Duration
	seeded, audits := 0, 0 // audits: entries of the log counted so far
	for li, level := range levels {
		start := time.Now()
		for seeded < level {
			if time.Since(start) > govBenchLimit {
				b.Fatalf("building %d decided proposals took over %v (at %d)", level, govBenchLimit, seeded)
			}
			offset += govBenchStep
			clock.Set(offset)
			if err := govBenchDecide(ctx, auth, caller, seeded); err != nil {
				b.Fatalf("seed proposal %d: %v", seeded, err)
			}
			seeded++
		}
		// Counted from the tail only: reading the whole log would load
		// every archived segment right before measuring.
		n, err := govBenchAuditLen(ctx, auth, caller, audits)
		if err != nil {
			b.Fatal(err)
		}
		audits = n
		if li == len(levels)-1 && level > 0 {
			for i := n; i < auditTarget; i++ {
				if time.Since(start) > govBenchLimit {
					b.Fatalf("padding the audit log took over %v (at %d)", govBenchLimit, i)
				}
				if err := auth.Audit.Append(ctx, "bench.filler", map[string]any{"n": i}); err != nil {
					b.Fatalf("audit filler %d: %v", i, err)
				}
				audits++
			}
		}
		built := time.Since(start)
		var both, vote []time.Duration
		var maxLoaded float64
		for i := range govBenchRounds {
			if i%govBenchPerDay == 0 {
				// A new day: the measured proposals fit in the daily bound.
				offset += 25 * time.Hour
				clock.Set(offset)
				servertest.MustRefresh(b, c.URL(), c.CircleID, d, clock.Now())
			}
			id := uuid.NewString()
			req := govBenchRequest(id, seeded+i)
			t0 := time.Now()
			if err := h.Do("POST", "/v1/proposals", d.Token, http.StatusCreated, req, nil); err != nil {
				b.Fatalf("level %d: propose: %v", level, err)
			}
			t1 := time.Now()
			var p wire.Proposal
			if err := h.Do("POST", "/v1/proposals/"+id+"/votes", d.Token, http.StatusOK, wire.VoteRequest{Choice: govBenchChoice(seeded + i)}, &p); err != nil {
				b.Fatalf("level %d: vote: %v", level, err)
			}
			t2 := time.Now()
			if p.Status == "open" {
				b.Fatalf("level %d: proposal %s still open after the only member voted", level, id)
			}
			both, vote = append(both, t2.Sub(t0)), append(vote, t2.Sub(t1))
			m, err := h.metrics()
			if err != nil {
				b.Fatal(err)
			}
			maxLoaded = max(maxLoaded, m["circles_sync_loaded_bytes"])
		}
		seeded += govBenchRounds
		offset += 25 * time.Hour // and a new day for the next level's building
		clock.Set(offset)
		m, err := h.metrics()
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		name := fmt.Sprintf("d%d", level)
		b.ReportMetric(benchMS(benchPercentile(both, 50)), name+"_p50_ms")
		b.ReportMetric(benchMS(benchPercentile(both, 99)), name+"_p99_ms")
		b.ReportMetric(benchMS(benchPercentile(vote, 99)), name+"_vote_p99_ms")
		b.ReportMetric(maxLoaded/(1<<20), name+"_loaded_max_MiB")
		b.Logf("level %d decided proposals, %d audit entries (built in %v): propose+vote p50 %.2f ms, p99 %.2f ms; vote p50 %.2f ms, p99 %.2f ms; "+
			"circles_sync_loaded_bytes max %.1f MiB, after %.1f MiB (budget %.0f MiB); Go heap %.1f MiB",
			level, audits, built.Round(time.Second), benchMS(benchPercentile(both, 50)), benchMS(benchPercentile(both, 99)),
			benchMS(benchPercentile(vote, 50)), benchMS(benchPercentile(vote, 99)),
			maxLoaded/(1<<20), m["circles_sync_loaded_bytes"]/(1<<20), float64(budget)/(1<<20), float64(ms.HeapAlloc)/(1<<20))
	}
}

// govBenchDecide opens proposal n as the caller and votes on it, which
// decides it (the caller is the only member).
func govBenchDecide(ctx context.Context, auth *authority.Authority, c authority.Caller, n int) error {
	id := uuid.NewString()
	if _, _, err := auth.Governance.Propose(ctx, c, govBenchRequest(id, n)); err != nil {
		return err
	}
	p, err := auth.Governance.Vote(ctx, c, id, wire.VoteRequest{Choice: govBenchChoice(n)})
	if err != nil {
		return err
	}
	if p.Status == "open" {
		return fmt.Errorf("proposal %s still open", id)
	}
	return nil
}

func govBenchRequest(id string, n int) wire.ProposalRequest {
	return wire.ProposalRequest{ID: id, Kind: "member.admit", Title: fmt.Sprintf("Admit newcomer %d", n),
		Body: "A neighbour who has helped at the garden for a month.", Payload: map[string]any{"name": fmt.Sprintf("Newcomer %d", n)}}
}

// govBenchChoice passes even proposals and rejects odd ones.
func govBenchChoice(n int) string {
	if n%2 == 0 {
		return "yes"
	}
	return "no"
}

// govBenchAuditLen is the number of entries of the audit log, which had
// at least known.
func govBenchAuditLen(ctx context.Context, auth *authority.Authority, c authority.Caller, known int) (int, error) {
	page, err := auth.Audit.Entries(ctx, c, int64(known), 1<<30)
	if err != nil {
		return 0, err
	}
	return known + len(page.Entries), nil
}
