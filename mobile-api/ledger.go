package mobileapi

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

func (a *api) registerLedgerRoutes(g *echo.Group) {
	g.POST("/ledger/entries", a.createEntry)
	g.GET("/ledger/entries", a.listEntries)
	g.GET("/balances", a.balances)
}

func (a *api) createEntry(c echo.Context) error {
	var e wire.Entry
	if err := bind(c, a.opts.MaxBody, &e); err != nil {
		return err
	}
	stored, created, err := a.svc.Ledger.CreateEntry(c.Request().Context(), callerOf(c), e)
	if err != nil {
		return err
	}
	return renderCreated(c, created, stored)
}

func (a *api) listEntries(c echo.Context) error {
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	list, err := a.svc.Ledger.ListEntries(c.Request().Context(), callerOf(c), c.QueryParam("member"), limit, c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (a *api) balances(c echo.Context) error {
	b, err := a.svc.Ledger.Balances(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}
