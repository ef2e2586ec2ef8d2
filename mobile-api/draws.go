package mobileapi

import (
	"context"
	"net/http"
	"net/url"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/crdt"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

// DrawRounds runs the commit–reveal draws devices take part in.
type DrawRounds interface {
	// Rounds lists the draws, all or ("open") those not closed yet.
	Rounds(ctx context.Context, c Caller, status string) (wire.DrawList, error)
	// Round returns one draw with its commitments, reveals and result.
	Round(ctx context.Context, c Caller, id string) (wire.Draw, error)
	// Commit takes the caller's member's signed commitment.
	Commit(ctx context.Context, c Caller, id string, req wire.DrawCommitRequest) (wire.Draw, error)
	// Reveal takes the caller's member's value.
	Reveal(ctx context.Context, c Caller, id string, req wire.DrawRevealRequest) (wire.Draw, error)
}

func (a *api) registerDrawRoutes(g *echo.Group) {
	g.GET("/draws", a.listDraws)
	g.GET("/draws/:id", a.getDraw)
	g.POST("/draws/:id/commitments", a.commitDraw)
	g.POST("/draws/:id/reveals", a.revealDraw)
}

// unescapedID is the path's id decoded: echo keeps a percent-encoded
// segment as sent, and a browser's encodeURIComponent encodes the ":" of
// ids such as pair-audit:2027-Q1.
func unescapedID(c echo.Context) string {
	id := c.Param("id")
	if s, err := url.PathUnescape(id); err == nil {
		return s
	}
	return id
}

func drawID(c echo.Context) (string, error) {
	id := unescapedID(c)
	if !crdt.IsDrawID(id) {
		return "", fault.Errorf(fault.NotFound, "there is no such draw")
	}
	return id, nil
}

func (a *api) listDraws(c echo.Context) error {
	status := c.QueryParam("status")
	if status != "" && status != "open" && status != "all" {
		return fault.Errorf(fault.InvalidRequest, "query parameter \"status\" must be open or all")
	}
	list, err := a.svc.DrawRounds.Rounds(c.Request().Context(), callerOf(c), status)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *api) getDraw(c echo.Context) error {
	id, err := drawID(c)
	if err != nil {
		return err
	}
	d, err := a.svc.DrawRounds.Round(c.Request().Context(), callerOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (a *api) commitDraw(c echo.Context) error {
	id, err := drawID(c)
	if err != nil {
		return err
	}
	var req wire.DrawCommitRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	d, err := a.svc.DrawRounds.Commit(c.Request().Context(), callerOf(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

func (a *api) revealDraw(c echo.Context) error {
	id, err := drawID(c)
	if err != nil {
		return err
	}
	var req wire.DrawRevealRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	d, err := a.svc.DrawRounds.Reveal(c.Request().Context(), callerOf(c), id, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}
