package mobileapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (a *api) registerCircleRoutes(g *echo.Group) {
	g.GET("/circle", a.circle)
}

func (a *api) circle(c echo.Context) error {
	resp, err := a.svc.Circles.Circle(c.Request().Context(), callerOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, resp)
}
