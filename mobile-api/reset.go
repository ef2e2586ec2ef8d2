package mobileapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

func (a *api) registerResetRoutes(g *echo.Group) {
	g.POST("/resets/signatures", a.signReset)
	g.GET("/resets", a.resetStatus)
}

func (a *api) signReset(c echo.Context) error {
	var req wire.ResetRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	st, err := a.svc.Resets.Sign(c.Request().Context(), callerOf(c), req.Statement)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, st)
}

func (a *api) resetStatus(c echo.Context) error {
	st, err := a.svc.Resets.Status(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, st)
}
