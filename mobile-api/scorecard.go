package mobileapi

import (
	"context"
	"net/http"
	"slices"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/wire"
)

// Scorecards computes the circle's sovereignty scorecard.
type Scorecards interface {
	// Scorecard counts the dependencies reversed by kind in each calendar
	// period ("month", "quarter" or "year").
	Scorecard(ctx context.Context, c Caller, period string) (wire.Scorecard, error)
}

// scorecardPeriods are the values of GET /v1/scorecard?period=.
var scorecardPeriods = []string{"month", "quarter", "year"}

func (a *api) registerScorecardRoutes(g *echo.Group) {
	g.GET("/scorecard", a.scorecard)
}

func (a *api) scorecard(c echo.Context) error {
	period := c.QueryParam("period")
	if period == "" {
		period = "month"
	}
	if !slices.Contains(scorecardPeriods, period) {
		return fault.Errorf(fault.InvalidRequest, "query parameter \"period\" must be month, quarter or year")
	}
	sc, err := a.svc.Scorecard.Scorecard(c.Request().Context(), callerOf(c), period)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sc)
}
