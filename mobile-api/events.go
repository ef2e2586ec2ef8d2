package mobileapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

func (a *api) registerEventRoutes(g *echo.Group) {
	g.GET("/events", a.events)
}

// eventsHeartbeat keeps idle event streams (and proxies) alive.
const eventsHeartbeat = 15 * time.Second

// events streams the circle's events as server-sent events until the
// client goes away or the server shuts down.
func (a *api) events(c echo.Context) error {
	ch, stop := a.svc.Events.Subscribe(callerOf(c))
	defer stop()
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": connected\n\n")
	w.Flush()
	tick := time.NewTicker(eventsHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-tick.C:
			fmt.Fprint(w, ": ping\n\n")
			w.Flush()
		case ev, ok := <-ch:
			if !ok {
				return nil
			}
			data, err := json.Marshal(ev.Data)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, data)
			w.Flush()
		}
	}
}
