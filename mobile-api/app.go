package mobileapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/circles-coop/circles/authority/fault"
	"github.com/labstack/echo/v4"
)

// appDist holds the phone app as built by `make app` (mobile-api/app,
// bundled into app/dist). A fresh clone has only dist/.keep there: the
// server then says how to build the app instead of serving it.
//
//go:embed all:app/dist
var appDist embed.FS

// embeddedApp is the built app's directory inside appDist.
func embeddedApp() fs.FS {
	sub, err := fs.Sub(appDist, "app/dist")
	if err != nil {
		panic("mobileapi: the embedded app directory: " + err.Error()) // a fixed, valid path
	}
	return sub
}

// appContentTypes names every type the build writes, so the answer does
// not depend on the host's mime.types.
var appContentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".wasm":        "application/wasm",
	".webmanifest": "application/manifest+json",
	".json":        "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
}

// appCSP allows the app's own files and calls only; 'wasm-unsafe-eval'
// lets automerge compile its WebAssembly.
const appCSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// appFile is one file of the app. Its ETag and gzipped form are made on
// first use: every server start (and tests start many) need not hash and
// compress megabytes of WebAssembly.
type appFile struct {
	name  string
	body  []byte
	ctype string

	etagOnce sync.Once
	etag     string

	gzipOnce sync.Once
	gz       []byte // nil when compressing does not pay
}

func (f *appFile) tag() string {
	f.etagOnce.Do(func() {
		sum := sha256.Sum256(f.body)
		f.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	})
	return f.etag
}

// appServer serves the phone app (API.md "The phone app"): its files under
// /app/, index.html for /app/, for any other /app/ page without a file
// extension (the app routes by the URL's fragment) and for /join, whose
// fragment carries the invite code.
type appServer struct {
	files map[string]*appFile // by name in the build directory
}

func newAppServer(fsys fs.FS) *appServer {
	s := &appServer{files: map[string]*appFile{}}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(path.Base(p), ".") {
			return nil
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil
		}
		ctype, ok := appContentTypes[path.Ext(p)]
		if !ok {
			ctype = "application/octet-stream"
		}
		s.files[p] = &appFile{name: p, body: body, ctype: ctype}
		return nil
	})
	return s
}

func (s *appServer) built() bool { return s.files["index.html"] != nil }

// registerAppRoutes serves the phone app from fsys (nil: the embedded
// build).
func registerAppRoutes(e *echo.Echo, fsys fs.FS) {
	if fsys == nil {
		fsys = embeddedApp()
	}
	s := newAppServer(fsys)
	e.GET("/join", s.join)
	e.GET("/app", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/app/") })
	e.GET("/app/", s.index)
	e.GET("/app/:file", s.file)
}

func (s *appServer) join(c echo.Context) error {
	if !s.built() {
		return joinPage(c) // explains circlectl join
	}
	return s.serve(c, s.files["index.html"])
}

func (s *appServer) index(c echo.Context) error {
	if !s.built() {
		return c.HTML(http.StatusOK, notBuiltHTML) // a page for a person, who can act on it
	}
	return s.serve(c, s.files["index.html"])
}

func (s *appServer) file(c echo.Context) error {
	name := c.Param("file")
	if f := s.files[name]; f != nil && name != "index.html" {
		return s.serve(c, f)
	}
	if path.Ext(name) == "" || name == "index.html" {
		return s.index(c) // a page of the app
	}
	return fault.Errorf(fault.NotFound, "the app has no file %q", name)
}

// serve writes f with headers fit for an offline-first app: every answer
// is revalidated (no-cache with an ETag, so an unchanged file costs a
// 304), because the service worker, not the HTTP cache, keeps the app for
// offline use, and a new sw.js must be seen at once.
func (s *appServer) serve(c echo.Context, f *appFile) error {
	h := c.Response().Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept-Encoding")
	if f.ctype == appContentTypes[".html"] {
		h.Set("Content-Security-Policy", appCSP)
		h.Set("Referrer-Policy", "no-referrer") // the join page's URL holds an invite
	}
	if f.name == "sw.js" {
		h.Set("Service-Worker-Allowed", "/app/")
	}
	body := f.body
	if gz := f.compressed(); gz != nil && strings.Contains(c.Request().Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		h.Set("ETag", strings.TrimSuffix(f.tag(), `"`)+`-gz"`)
		body = gz
	} else {
		h.Set("ETag", f.tag())
	}
	http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(body))
	return nil
}

// compressed returns the file gzipped, compressed on first use, or nil
// for a file too small or too dense to gain.
func (f *appFile) compressed() []byte {
	f.gzipOnce.Do(func() {
		if len(f.body) < 1024 || f.ctype == "image/png" {
			return
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if _, err := zw.Write(f.body); err != nil || zw.Close() != nil {
			return
		}
		if buf.Len() < len(f.body)*9/10 {
			f.gz = buf.Bytes()
		}
	})
	return f.gz
}

const notBuiltHTML = `<!doctype html>
<html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>The phone app is not built</title>
<body style="font-family: sans-serif; max-width: 34em; margin: 2em auto; line-height: 1.5">
<h1>The phone app is not built</h1>
<p>This circled binary was built without its phone app. Build it with
<code>make build</code> (it runs npm ci and the bundler in mobile-api/app,
then go build), and start the server again.</p>
<p>Members can still join from a computer with <code>circlectl join</code>.</p>
</body></html>
`
