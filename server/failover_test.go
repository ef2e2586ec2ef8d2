package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// failoverPair inits a circle on urls and opens two failover instances of
// it, "one" (which serves first) and "two", each with its own data
// directory holding the circle's key.
func failoverPair(t *testing.T, urls string) (one, two *server.Failover, invite string) {
	t.Helper()
	ctx := context.Background()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.NATSURL, cfg.Replicas, cfg.Listen = filepath.Join(t.TempDir(), "one"), urls, 3, "127.0.0.1:0"
	res, err := server.Init(ctx, cfg, "Failover Circle", crdt.DefaultPolicies())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Instance = "one"
	one, err = server.OpenFailover(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { one.Close() })
	waitFor(t, "one serving", 10*time.Second, one.Serving)

	key, err := os.ReadFile(filepath.Join(cfg.DataDir, "circle.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Instance = filepath.Join(t.TempDir(), "two"), "two"
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "circle.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	two, err = server.OpenFailover(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { two.Close() })
	return one, two, res.Invite
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func readyStatus(t *testing.T, base string) (int, server.ReadyStatus) {
	t.Helper()
	r := servertest.Call(t, base, "GET", "/readyz", "", nil)
	var st server.ReadyStatus
	if err := json.Unmarshal(r.Body, &st); err != nil {
		t.Fatalf("/readyz body %s: %v", r.Body, err)
	}
	return r.Status, st
}

func createEntry(t *testing.T, base, token string) servertest.Response {
	t.Helper()
	return servertest.Call(t, base, "POST", "/v1/ledger/entries", token,
		servertest.MustJSON(t, wire.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, At: time.Now().UTC()}))
}

// TestFailoverLease: of two failover instances one serves and one stands
// by (/readyz and the 503 name the serving one; a standby changes
// nothing); when the lease is taken from the serving one behind its back
// it stops writing and stands by; a graceful Close hands over at once.
func TestFailoverLease(t *testing.T) {
	_, urls := startCluster(t)
	one, two, invite := failoverPair(t, urls)
	time.Sleep(3 * server.LeaseRenew) // two has tried and seen one
	if two.Serving() {
		t.Fatal("both instances serve")
	}
	code, st := readyStatus(t, one.URL())
	if code != http.StatusOK || st.Status != "ready" || st.Role != "serving" || st.Instance != "one" {
		t.Fatalf("serving /readyz: %d %+v", code, st)
	}
	code, st = readyStatus(t, two.URL())
	if code != http.StatusServiceUnavailable || st.Role != "standby" || st.Serving == nil || st.Serving.Instance != "one" || st.Serving.URL != one.URL() || st.Error == nil {
		t.Fatalf("standby /readyz: %d %+v", code, st)
	}
	if r := servertest.Call(t, two.URL(), "GET", "/healthz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("standby /healthz: %d", r.Status)
	}

	dev := servertest.MustEnroll(t, one.URL(), invite, "Ann")
	if r := createEntry(t, one.URL(), dev.Token); r.Status != http.StatusCreated {
		t.Fatalf("write to the serving instance: %d %s", r.Status, r.Body)
	}
	r := createEntry(t, two.URL(), dev.Token)
	if r.Status != http.StatusServiceUnavailable || r.Code != "not_ready" {
		t.Fatalf("write to the standby: %d %s", r.Status, r.Body)
	}

	// The lease is overwritten from outside (as if another instance had
	// taken it while one was cut off): one must notice at its next
	// renewal, close its fence and stand by.
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), server.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "serving", []byte(`{"instance":"intruder","url":"http://127.0.0.1:1"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one standing by after losing its lease", 3*server.LeaseRenew+time.Second, func() bool { return !one.Serving() })
	if r := createEntry(t, one.URL(), dev.Token); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("write to an instance that lost its lease: %d %s", r.Status, r.Body)
	}
	waitFor(t, "/readyz of an instance that lost its lease naming the intruder", time.Second, func() bool {
		code, st = readyStatus(t, one.URL())
		return code == http.StatusServiceUnavailable && st.Role == "standby" && st.Serving != nil && st.Serving.Instance == "intruder"
	})
	if one.Serving() || two.Serving() {
		t.Fatal("an instance serves while the intruder holds the lease")
	}

	// The intruder's entry expires; one of the two takes over and the
	// circle is whole.
	waitFor(t, "a takeover after the intruder's lease expired", server.LeaseTTL+5*time.Second, func() bool { return one.Serving() || two.Serving() })
	serving, standby := one, two
	if two.Serving() {
		serving, standby = two, one
	}
	if r := createEntry(t, serving.URL(), dev.Token); r.Status != http.StatusCreated {
		t.Fatalf("write after the takeover: %d %s", r.Status, r.Body)
	}

	// A graceful stop releases the lease: the standby serves well before
	// the lease would have expired.
	if err := serving.Close(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, "the standby serving after a graceful stop", server.LeaseTTL, standby.Serving)
	t.Logf("handover after a graceful stop: %s", took.Round(time.Millisecond))
	if r := createEntry(t, standby.URL(), dev.Token); r.Status != http.StatusCreated {
		t.Fatalf("write after the handover: %d %s", r.Status, r.Body)
	}
	var list wire.EntryList
	servertest.MustGetJSON(t, standby.URL(), dev, "/v1/ledger/entries", &list)
	if len(list.Entries) != 3 {
		t.Fatalf("after two handovers the circle lists %d entries, want the 3 acknowledged", len(list.Entries))
	}
}

// TestFailoverStaleLease: a lease nobody renews that JetStream does not
// expire (here: a bucket TTL of an hour) is taken over by a standby by
// compare-and-set at the revision it saw unchanged, after leaseStale
// (6 s); the instance that wrote it stays a standby.
func TestFailoverStaleLease(t *testing.T) {
	defer server.SetLeaseBucketTTL(time.Hour)()
	_, urls := startCluster(t)
	one, two, invite := failoverPair(t, urls)
	dev := servertest.MustEnroll(t, one.URL(), invite, "Ann")

	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), server.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	// A holder that then vanishes: its lease is never renewed, and with
	// this TTL never expires.
	if _, err := kv.Put(context.Background(), "serving", []byte(`{"instance":"vanished","url":"http://127.0.0.1:1"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one standing by", 3*time.Second, func() bool { return !one.Serving() })
	took := waitFor(t, "a takeover of the unrenewed lease", 15*time.Second, func() bool { return one.Serving() || two.Serving() })
	t.Logf("the unrenewed lease was taken over %s after the serving instance stood by", took.Round(time.Millisecond))
	if took < 5*time.Second {
		t.Fatalf("taken over after %s: before anyone could be sure its holder stopped writing", took)
	}
	serving := one
	if two.Serving() {
		serving = two
	}
	if one.Serving() && two.Serving() {
		t.Fatal("both serve")
	}
	if r := createEntry(t, serving.URL(), dev.Token); r.Status != http.StatusCreated {
		t.Fatalf("write after the takeover: %d %s", r.Status, r.Body)
	}
}
