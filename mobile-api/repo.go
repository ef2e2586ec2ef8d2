package mobileapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/sync/repo"
)

// registerRepoRoutes serves GET /v1/repo, the automerge-repo protocol over
// WebSocket (package sync/repo), when the services include the engine's
// sessions; without them it answers 501. The route authenticates by
// itself: a WebSocket client in a browser cannot set headers, so the
// token may also come as ?token=.
func (a *api) registerRepoRoutes(g *echo.Group) {
	if a.svc.Sessions == nil {
		g.GET("/repo", func(c echo.Context) error {
			return fault.Errorf(fault.NotImplemented, "sync over WebSocket is not enabled on this server")
		}, a.authenticate)
		return
	}
	srv := repo.New(a.svc.Sessions, repo.Options{Logger: a.opts.Logger, Refusal: refusal})
	g.GET("/repo", func(c echo.Context) error { return a.repoSync(c, srv) })
}

func (a *api) repoSync(c echo.Context, srv *repo.Server) error {
	r := c.Request()
	token := c.QueryParam("token")
	if token == "" {
		token, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if token == "" {
		return fault.Errorf(fault.Unauthenticated, "send an access token as ?token=<token> or 'Authorization: Bearer <token>'; get one at POST /v1/token")
	}
	caller, err := a.svc.Identity.Authenticate(r.Context(), token)
	if err != nil {
		return err
	}
	if !isWebSocketUpgrade(r) {
		return fault.Errorf(fault.InvalidRequest, "GET /v1/repo upgrades to a WebSocket speaking the automerge-repo protocol; connect with a WebSocket client")
	}
	peer := engine.Peer{Device: caller.Device, Member: caller.Member, Actor: caller.Actor}
	// The token keeps being checked while the socket is open: a revoked
	// device or an expired token ends it.
	recheck := func(ctx context.Context) error {
		_, err := a.svc.Identity.Authenticate(ctx, token)
		return err
	}
	if err := srv.Serve(c.Response(), r, peer, recheck); err != nil {
		// The upgrade failed and has been answered (426, 403 for a
		// foreign Origin): nothing more to write.
		a.log.Debug("websocket upgrade refused", "err", err)
	}
	return nil
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// refusal names the broken rule of a refused WebSocket sync message for
// the client's notice, as the HTTP error table does for POST /v1/sync.
func refusal(err error) (rule, message string, ok bool) {
	var re *crdt.RuleError
	if errors.As(err, &re) {
		return re.Rule, re.Message, true
	}
	return "", "", false
}
