package mobileapi

import (
	"net/http"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

func (a *api) registerIdentityRoutes(g *echo.Group, limited echo.MiddlewareFunc) {
	g.POST("/enroll", a.enroll, limited)
	g.POST("/token", a.token, limited)
	g.POST("/invites", a.createInvite, a.authenticate)
	g.POST("/devices/:id/revoke", a.revokeDevice, a.authenticate)
}

func (a *api) revokeDevice(c echo.Context) error {
	resp, err := a.svc.Identity.RevokeDevice(c.Request().Context(), callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

func (a *api) enroll(c echo.Context) error {
	var req wire.EnrollRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	resp, err := a.svc.Identity.Enroll(c.Request().Context(), req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, resp)
}

func (a *api) token(c echo.Context) error {
	var req wire.TokenRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	if req.Assertion == "" {
		return fault.Errorf(fault.InvalidRequest, "field \"assertion\" is required: a JWT signed by the device key")
	}
	resp, err := a.svc.Identity.Token(c.Request().Context(), req.Assertion)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}

func (a *api) createInvite(c echo.Context) error {
	var req wire.InviteRequest
	if err := bind(c, a.opts.MaxBody, &req); err != nil {
		return err
	}
	resp, err := a.svc.Identity.CreateInvite(c.Request().Context(), callerOf(c), req, c.Scheme()+"://"+c.Request().Host)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, resp)
}
