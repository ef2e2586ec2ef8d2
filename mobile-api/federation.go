package mobileapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/circles-coop/circles/wire"
)

// Federations lists the circle's federations (package server wires the
// federation link).
type Federations interface {
	Federations(ctx context.Context, c Caller) (wire.Federations, error)
}

func (a *api) registerFederationRoutes(g *echo.Group) {
	g.GET("/federations", a.federations)
}

func (a *api) federations(c echo.Context) error {
	if a.svc.Federations == nil {
		return fault.Errorf(fault.NotImplemented, "this circle server has no federation link")
	}
	out, err := a.svc.Federations.Federations(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
