package server_test

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/circles-coop/circles/server/servertest"
)

// TestDeviceLimitCountsActiveDevices: the limit of 32 devices counts the
// devices not revoked: a member who revoked one may enrol another.
func TestDeviceLimitCountsActiveDevices(t *testing.T) {
	c := servertest.Start(t, "Devices")
	url := c.URL()
	first := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	devs := []*servertest.Device{first}
	for len(devs) < 32 {
		d, err := enrollDevice(url, servertest.MustInvite(t, url, first, "device", "1h"), "Ada")
		if err != nil {
			t.Fatalf("device %d: %v", len(devs)+1, err)
		}
		devs = append(devs, d)
	}
	code := servertest.MustInvite(t, url, first, "device", "1h")
	if _, err := enrollDevice(url, code, "Ada"); err == nil {
		t.Fatalf("a 33rd active device was enrolled, want it refused")
	}
	if r := servertest.Call(t, url, "POST", "/v1/devices/"+devs[31].ID+"/revoke", first.Token, []byte(`{}`)); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if _, err := enrollDevice(url, code, "Ada"); err != nil {
		t.Fatalf("after revoking one of 32 devices, enrolling another: %v", err)
	}
}

// TestBodyTooLargeByContentLength: a request that declares a body over the
// limit is answered 413 at once, without the server waiting for a body
// that never comes.
func TestBodyTooLargeByContentLength(t *testing.T) {
	c := servertest.Start(t, "Huge Body")
	url := c.URL()
	ada := servertest.MustEnroll(t, url, c.FounderInvite, "Ada")
	for _, tc := range []struct{ path, token string }{
		{"/v1/enroll", ""},
		{"/v1/invites", ada.Token},
		{"/v1/sync", ada.Token},
	} {
		conn, err := net.Dial("tcp", c.Server.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		req := "POST " + tc.path + " HTTP/1.1\r\nHost: circle\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n"
		if tc.token != "" {
			req += "Authorization: Bearer " + tc.token + "\r\n"
		}
		req += "\r\n{}"
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("POST %s with Content-Length 1e9 and a 2-byte body: no answer within 5 s: %v", tc.path, err)
		}
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with Content-Length 1e9: %d, want 413", tc.path, resp.StatusCode)
		}
		resp.Body.Close()
		conn.Close()
	}
}
