package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// The roster is written by enrolments, revocations, new ledger segments
// and governance. These tests race real requests against each other over
// HTTP, as the outside probe did: every write that was answered with
// success must stick. Run them under -race too (make test-race).

// post sends one JSON request from any goroutine and returns the status
// and body (no t.Fatal off the test's goroutine).
func post(url, path, token string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// enrollDevice enrols a new device with a device (or member) invite from
// any goroutine.
func enrollDevice(url, invite, name string) (*servertest.Device, error) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	d := &servertest.Device{Key: priv, Actor: automerge.NewActorID()}
	status, body, err := post(url, "/v1/enroll", "", wire.EnrollRequest{Invite: invite, MemberName: name, DeviceName: name, PublicKey: pub, ActorID: d.Actor})
	if err != nil {
		return nil, err
	}
	if status != http.StatusCreated {
		return nil, fmt.Errorf("enroll %s: %d %s", name, status, body)
	}
	var er wire.EnrollResponse
	if err := json.Unmarshal(body, &er); err != nil {
		return nil, err
	}
	d.Member, d.ID, d.Token = er.MemberID, er.DeviceID, er.AccessToken
	return d, nil
}

// race runs fn(i) for i in [0, n) at once and returns the first error.
func race(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestConcurrentEnrolmentsAllWork(t *testing.T) {
	c := servertest.Start(t, "Enrolment Race")
	url := c.URL()
	founder := servertest.MustEnroll(t, url, c.FounderInvite, "Founder")
	const n = 6
	for round := range 3 {
		invites := make([]string, n)
		for i := range invites {
			// A member holds at most 3 open invites of a kind: half
			// enrol devices of the founder, half new members.
			kind := "device"
			if i%2 == 1 {
				kind = "member"
			}
			invites[i] = servertest.MustInvite(t, url, founder, kind, "1h")
		}
		devs := make([]*servertest.Device, n)
		err := race(n, func(i int) (err error) {
			devs[i], err = enrollDevice(url, invites[i], fmt.Sprintf("phone-%d-%d", round, i))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range devs {
			if r := servertest.Call(t, url, "GET", "/v1/circle", d.Token, nil); r.Status != http.StatusOK {
				t.Errorf("round %d: device %d enrolled with 201, then GET /v1/circle = %d %s, want 200", round, i, r.Status, r.Body)
			}
		}
	}
	if r := servertest.Call(t, url, "GET", "/v1/circle", founder.Token, nil); r.Status != http.StatusOK {
		t.Errorf("the founder's first device after the races: %d, want 200", r.Status)
	}
}

func TestConcurrentRevocationsAllStick(t *testing.T) {
	c := servertest.Start(t, "Revocation Race")
	url := c.URL()
	founder := servertest.MustEnroll(t, url, c.FounderInvite, "Founder")
	const n = 4
	for round := range 3 {
		devs := make([]*servertest.Device, n)
		for i := range devs {
			devs[i] = servertest.MustEnroll(t, url, servertest.MustInvite(t, url, founder, "device", "1h"), fmt.Sprintf("lost-%d-%d", round, i))
		}
		err := race(n, func(i int) error {
			status, body, err := post(url, "/v1/devices/"+devs[i].ID+"/revoke", founder.Token, struct{}{})
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("revoke %s: %d %s", devs[i].ID, status, body)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range devs {
			if r := servertest.Call(t, url, "GET", "/v1/circle", d.Token, nil); r.Status != http.StatusUnauthorized {
				t.Errorf("round %d: device %d was revoked with 200, yet its token answers %d, want 401", round, i, r.Status)
			}
		}
	}
}

// A member being removed enrols more devices while the deciding vote
// lands: whatever the order, once the proposal passed, the member is
// out and none of their devices works.
func TestRemovalWinsOverConcurrentEnrolment(t *testing.T) {
	for round := range 3 {
		c := servertest.Start(t, fmt.Sprintf("Removal Race %d", round))
		url := c.URL()
		a := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
		b := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, a, "member", "1h"), "Bo")
		cc := servertest.MustEnroll(t, url, servertest.MustInvite(t, url, a, "member", "1h"), "Cy")
		p := mustPropose(t, url, a, "member.remove", "Bo leaves", map[string]any{"member": b.Member})
		mustVote(t, url, a, p.ID, "yes")
		mustVote(t, url, b, p.ID, "abstain")
		const n = 3 // the most open device invites a member may hold
		invites := make([]string, n)
		for i := range invites {
			invites[i] = servertest.MustInvite(t, url, b, "device", "1h")
		}
		devs := make([]*servertest.Device, n)
		// Cy's vote settles it; Bo's new phones enrol at the same time.
		_ = race(n+1, func(i int) error {
			if i == n {
				_, _, err := post(url, "/v1/proposals/"+p.ID+"/votes", cc.Token, wire.VoteRequest{Choice: "yes"})
				return err
			}
			d, err := enrollDevice(url, invites[i], fmt.Sprintf("bo-%d", i))
			devs[i] = d // nil when refused: Bo was already out
			return err
		})
		if got := getProposal(t, url, a, p.ID); got.Status != "passed" || !got.Applied {
			t.Fatalf("round %d: member.remove is %s (applied %v), want passed and applied", round, got.Status, got.Applied)
		}
		for i, d := range append([]*servertest.Device{b}, devs...) {
			if d == nil {
				continue
			}
			if r := servertest.Call(t, url, "GET", "/v1/circle", d.Token, nil); r.Status != http.StatusUnauthorized {
				t.Errorf("round %d: Bo's device %d still answers %d after the removal passed, want 401", round, i, r.Status)
			}
		}
		for _, m := range servertest.MustCircle(t, url, a).Members {
			if m.MemberID == b.Member {
				t.Errorf("round %d: Bo is still listed as a member after the removal passed", round)
			}
		}
		c.Stop()
	}
}
