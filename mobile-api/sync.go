package mobileapi

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/circles-coop/circles/authority/fault"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/sync/engine"
	"github.com/circles-coop/circles/wire"
)

func (a *api) registerSyncRoutes(g *echo.Group) {
	g.POST("/sync", a.sync)
}

func (a *api) sync(c echo.Context) error {
	var req wire.SyncRequest
	if err := bind(c, a.opts.MaxSyncBody, &req); err != nil {
		return err
	}
	in, err := SyncMessages(req, a.opts.MaxSyncMessages)
	if err != nil {
		return err
	}
	out, err := a.svc.Syncer.Sync(c.Request().Context(), callerOf(c), in)
	if err != nil {
		return err
	}
	return writeSyncResponse(c, out)
}

// writeSyncResponse streams {"messages": [{"doc", "data"}]} to the client,
// base64-encoding each message straight into the response. A device that
// fetches a whole circle can receive many megabytes; encoding/json would
// build all of it in memory, twice over, before sending a byte.
func writeSyncResponse(c echo.Context, out []engine.Message) error {
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.WriteHeader(http.StatusOK)
	bw := responseWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil) // hold no reference to the response
		responseWriters.Put(bw)
	}()
	bw.WriteString(`{"messages":[`)
	for i, m := range out {
		if i > 0 {
			bw.WriteByte(',')
		}
		doc, err := json.Marshal(m.Doc)
		if err != nil {
			return err
		}
		bw.WriteString(`{"doc":`)
		bw.Write(doc)
		bw.WriteString(`,"data":"`)
		enc := base64.NewEncoder(base64.StdEncoding, bw)
		enc.Write(m.Data)
		enc.Close()
		bw.WriteString(`"}`)
		out[i].Data = nil // let the collector have it while the rest is written
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

// responseWriters are writeSyncResponse's buffers, 32 KiB each: most
// answers are a few hundred bytes, and a new buffer per request was a
// large part of what a busy sync endpoint allocated.
var responseWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}

// SyncMessages checks a decoded POST /v1/sync body and turns it into the
// engine's messages. The automerge bytes themselves are checked by the
// engine, before anything is applied.
func SyncMessages(req wire.SyncRequest, maxMessages int) ([]engine.Message, error) {
	if req.Messages == nil {
		return nil, fault.Errorf(fault.InvalidRequest, "field \"messages\" is required: a list of {doc, data}")
	}
	if len(req.Messages) > maxMessages {
		return nil, fault.Errorf(fault.TooLarge, "at most %d messages per request, got %d", maxMessages, len(req.Messages))
	}
	in := make([]engine.Message, len(req.Messages))
	for i, m := range req.Messages {
		if m.Doc == "" || len(m.Doc) > 64 {
			return nil, fault.Errorf(fault.InvalidRequest, "messages[%d].doc must be a document id", i)
		}
		if len(m.Data) == 0 {
			return nil, fault.Errorf(fault.InvalidRequest, "messages[%d].data is required: a base64 automerge sync message", i)
		}
		in[i] = engine.Message{Doc: m.Doc, Data: m.Data}
	}
	return in, nil
}
