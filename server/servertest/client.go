package servertest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/wire"
)

// Client calls a circle's API from any goroutine. Unlike the Must helpers
// its methods return errors instead of failing a test, so that the
// goroutines of a benchmark or a load test can use it. Its transport keeps
// a connection per concurrent caller alive, as phones with their own
// connections would; requests time out after two minutes.
type Client struct {
	Base string
	HTTP *http.Client
}

// NewClient returns a Client of the server at base.
func NewClient(base string) *Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	return &Client{Base: base, HTTP: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

// Close closes the client's idle connections.
func (c *Client) Close() { c.HTTP.CloseIdleConnections() }

// Do sends in as JSON (nil: no body) with token (empty: none) and decodes
// the answer into out (nil: discard it). An answer with another status
// than want is an error that quotes the body.
func (c *Client) Do(method, path, token string, want int, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %.300s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// Enroll redeems invite as a new device with a new key and actor (and,
// for a member invite, a new member named name).
func (c *Client) Enroll(invite, name string) (*Device, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	d := &Device{Key: priv, Actor: automerge.NewActorID()}
	var er wire.EnrollResponse
	req := wire.EnrollRequest{Invite: invite, MemberName: name, DeviceName: name + "-phone", PublicKey: pub, ActorID: d.Actor}
	if err := c.DoRetrying("POST", "/v1/enroll", "", http.StatusCreated, req, &er); err != nil {
		return nil, err
	}
	d.Member, d.ID, d.Token = er.MemberID, er.DeviceID, er.AccessToken
	return d, nil
}

// DoRetrying is Do for the endpoints that take no token, which the
// server rate-limits per address: on a 429 it waits and tries again, as a
// phone would, for at most a minute.
func (c *Client) DoRetrying(method, path, token string, want int, in, out any) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := c.Do(method, path, token, want, in, out)
		if err == nil || !strings.Contains(err.Error(), "status 429") || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Invite makes an invite ("member" or "device") as d and returns its code.
func (c *Client) Invite(d *Device, forWhat string) (string, error) {
	var ir wire.InviteResponse
	if err := c.Do("POST", "/v1/invites", d.Token, http.StatusCreated, wire.InviteRequest{For: forWhat}, &ir); err != nil {
		return "", err
	}
	return ir.Code, nil
}

// EnrollMembers enrols n members with one device each, named "Member 00",
// "Member 01", …: the first with the founder invite, the others with
// member invites made by the first.
func (c *Client) EnrollMembers(founderInvite string, n int) ([]*Device, error) {
	first, err := c.Enroll(founderInvite, "Member 00")
	if err != nil {
		return nil, err
	}
	devs := []*Device{first}
	for i := 1; i < n; i++ {
		code, err := c.Invite(first, "member")
		if err != nil {
			return nil, err
		}
		d, err := c.Enroll(code, fmt.Sprintf("Member %02d", i))
		if err != nil {
			return nil, err
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// Circle is GET /v1/circle as d.
func (c *Client) Circle(d *Device) (wire.Circle, error) {
	var circle wire.Circle
	err := c.Do("GET", "/v1/circle", d.Token, http.StatusOK, nil, &circle)
	return circle, err
}
