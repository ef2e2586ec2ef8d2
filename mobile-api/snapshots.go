package mobileapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/circles-coop/circles/sync/engine"
)

// Snapshots serves documents' stored snapshots (GET
// /v1/docs/{doc}/snapshot); the Syncer provides it when it can.
type Snapshots interface {
	// LatestSnapshot compacts doc first if it changed since its stored
	// snapshot; Snapshot reads the stored one as it is.
	LatestSnapshot(ctx context.Context, c Caller, doc string) (engine.Snapshot, error)
	Snapshot(ctx context.Context, c Caller, doc string) (engine.Snapshot, error)
}

// snapshotMaxAge is how long a content-addressed snapshot may be cached:
// its URL names its bytes, so it never changes.
const snapshotMaxAge = "31536000"

// registerSnapshotRoutes serves a document's stored compacted save, the
// bytes automerge's load takes, with the same read check as sync:
//
//   - GET /v1/docs/{doc}/snapshot compacts the document if it changed
//     since its stored snapshot (one load of one document) and answers
//     302 to the content-addressed URL of that snapshot, which holds the
//     whole document; the URL changes when the document is compacted
//     again.
//   - GET /v1/docs/{doc}/snapshot/{hash} answers the bytes (ETag: the
//     hash; Cache-Control: private, immutable), 304 to If-None-Match with
//     it, and 404 when hash is no longer the document's snapshot.
func (a *api) registerSnapshotRoutes(g *echo.Group) {
	sn, ok := a.svc.Syncer.(Snapshots)
	if !ok {
		sn = noSnapshots{}
	}
	g.GET("/docs/:doc/snapshot", func(c echo.Context) error {
		snap, err := sn.LatestSnapshot(c.Request().Context(), callerOf(c), c.Param("doc"))
		if err != nil {
			return err
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "private, no-cache")
		h.Set("ETag", `"`+snap.Hash+`"`)
		return c.Redirect(http.StatusFound, "/v1/docs/"+c.Param("doc")+"/snapshot/"+snap.Hash)
	})
	g.GET("/docs/:doc/snapshot/:hash", func(c echo.Context) error {
		snap, err := sn.Snapshot(c.Request().Context(), callerOf(c), c.Param("doc"))
		if err != nil {
			return err
		}
		if c.Param("hash") != snap.Hash {
			return fault.Errorf(fault.NotFound, "%s is not the current snapshot of document %s (it was compacted again); GET /v1/docs/%s/snapshot", c.Param("hash"), c.Param("doc"), c.Param("doc"))
		}
		h := c.Response().Header()
		etag := `"` + snap.Hash + `"`
		h.Set("ETag", etag)
		h.Set("Cache-Control", "private, max-age="+snapshotMaxAge+", immutable")
		complete := "false"
		if snap.Complete {
			complete = "true"
		}
		h.Set("Circles-Snapshot-Complete", complete)
		if matchesETag(c.Request().Header.Get("If-None-Match"), etag) {
			return c.NoContent(http.StatusNotModified)
		}
		return c.Blob(http.StatusOK, "application/octet-stream", snap.Data)
	})
}

// matchesETag reports whether an If-None-Match header names etag (weak
// forms and lists included).
func matchesETag(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// noSnapshots answers 501 where the services serve no snapshots.
type noSnapshots struct{}

func (noSnapshots) LatestSnapshot(context.Context, Caller, string) (engine.Snapshot, error) {
	return engine.Snapshot{}, fault.Errorf(fault.NotImplemented, "this server does not serve snapshots; sync the document with POST /v1/sync")
}

func (n noSnapshots) Snapshot(ctx context.Context, c Caller, doc string) (engine.Snapshot, error) {
	return n.LatestSnapshot(ctx, c, doc)
}
