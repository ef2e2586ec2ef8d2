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

// eventsWriteWait bounds each write to an event stream: a client that
// stops reading is cut off after it, while a stream that is read lives
// as long as the client wants (the server's WriteTimeout, which bounds a
// whole response, does not apply to it).
const eventsWriteWait = 30 * time.Second

// events streams the circle's events as server-sent events until the
// client goes away, the server shuts down, or the stream is ended: its
// device was revoked or its member removed, or the device opened more
// than authority.MaxStreamsPerDevice streams (the oldest ends).
func (a *api) events(c echo.Context) error {
	ch, stop := a.svc.Events.Subscribe(callerOf(c))
	defer stop()
	w := c.Response()
	rc := http.NewResponseController(w.Writer)
	// Every write below gets its own deadline instead of the server's.
	deadline := func() {
		if err := rc.SetWriteDeadline(time.Now().Add(eventsWriteWait)); err != nil {
			a.log.Debug("event stream: cannot set a write deadline", "err", err)
		}
	}
	deadline()
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
			deadline()
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
			deadline()
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, data)
			w.Flush()
		}
	}
}
