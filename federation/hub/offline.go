package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/circles-coop/circles/federation"
)

// errNotServing says no hub answers on the control socket.
var errNotServing = errors.New("no hub serving")

// callControl posts req to the serving hub's control socket in dir.
func callControl(ctx context.Context, dir, path string, req, resp any) error {
	sock := filepath.Join(dir, socketFile)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	b, _ := json.Marshal(req)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://hub"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	res, err := c.Do(r)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotServing, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var eb federation.ErrorBody
		_ = json.NewDecoder(res.Body).Decode(&eb)
		return &apiError{res.StatusCode, eb.Error.Code, eb.Error.Message}
	}
	return json.NewDecoder(res.Body).Decode(resp)
}

// withState runs change on the hub's state in dir with the directory
// locked (no hub serving), and saves it if change succeeds.
func withState(dir string, change func(*state) error) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	st, _, err := loadState(dir)
	if err != nil {
		return err
	}
	if err := change(st); err != nil {
		return err
	}
	return st.save(dir)
}

// MakeInvite makes a one-time join invite for the hub in dir, valid for
// ttl: through the serving hub if one serves, else in its state directly.
func MakeInvite(ctx context.Context, dir string, ttl time.Duration, now time.Time) (Invite, error) {
	var inv Invite
	err := callControl(ctx, dir, "/invite", controlInvite{ExpiresIn: ttl.String()}, &inv)
	if !errors.Is(err, errNotServing) {
		return inv, err
	}
	err = withState(dir, func(st *state) error {
		var err error
		inv, err = st.newInvite(now, ttl)
		return err
	})
	return inv, err
}

// ExpelCircle expels circle from the hub in dir: the serving hub revokes
// its user at once; with no hub serving, the revocation is written to the
// state and holds from the next start.
func ExpelCircle(ctx context.Context, dir, circle string) error {
	if err := federation.CheckID("circle id", circle); err != nil {
		return err
	}
	var out map[string]string
	err := callControl(ctx, dir, "/expel", controlExpel{CircleID: circle}, &out)
	if !errors.Is(err, errNotServing) {
		return err
	}
	return withState(dir, func(st *state) error {
		h := &Hub{st: st, cfg: Config{DataDir: dir, Now: time.Now}}
		h.log = discardLogger()
		// revoke saves; withState saves again, harmlessly.
		return h.revoke(circle, statusExpelled)
	})
}
