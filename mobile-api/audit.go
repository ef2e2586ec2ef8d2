package mobileapi

import (
	"math"
	"net/http"
	"strconv"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"
)

func (a *api) registerAuditRoutes(g *echo.Group) {
	g.GET("/audit", a.audit)
}

func (a *api) audit(c echo.Context) error {
	var after int64
	if s := c.QueryParam("after"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n == math.MaxInt64 {
			return fault.Errorf(fault.InvalidRequest, "query parameter \"after\" must be a sequence number (0 or more)")
		}
		after = n
	}
	limit, err := queryInt(c, "limit", 500, 1, 5000)
	if err != nil {
		return err
	}
	page, err := a.svc.Audit.Entries(c.Request().Context(), callerOf(c), after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}
