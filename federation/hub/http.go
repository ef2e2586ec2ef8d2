package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/circles-coop/circles/federation"
)

// httpServer is an http.Server on its own listener.
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

func serveOn(ln net.Listener, h http.Handler) *httpServer {
	s := &httpServer{ln: ln, srv: &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second,
	}}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

func serveHTTP(addr string, h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return serveOn(ln, h), nil
}

func serveUnix(path string, h http.Handler) (*httpServer, error) {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil { // only the hub's own user
		ln.Close()
		return nil, err
	}
	return serveOn(ln, h), nil
}

func (s *httpServer) addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *httpServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
}

// apiError is an error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func classify(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrBadInvite), errors.Is(err, ErrInviteUsed), errors.Is(err, ErrInviteExpire):
		return &apiError{http.StatusForbidden, "forbidden", err.Error()}
	case errors.Is(err, errSignature):
		return &apiError{http.StatusUnauthorized, "unauthenticated", err.Error()}
	case errors.Is(err, ErrNotMember):
		return &apiError{http.StatusNotFound, "not_found", err.Error()}
	case errors.Is(err, ErrNKeyTaken), errors.Is(err, ErrOtherKey), strings.Contains(err.Error(), "a member already"):
		return &apiError{http.StatusConflict, "conflict", err.Error()}
	case errors.Is(err, federation.ErrBadID), strings.Contains(err.Error(), "must be"), strings.Contains(err.Error(), "notice"), strings.Contains(err.Error(), "invite lives"):
		return &apiError{http.StatusBadRequest, "invalid_request", err.Error()}
	}
	return &apiError{http.StatusInternalServerError, "internal", "internal error"}
}

func writeJSONResponse(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	ae := classify(err)
	var body federation.ErrorBody
	body.Error.Code, body.Error.Message = ae.code, ae.msg
	writeJSONResponse(w, ae.status, body)
}

// decodeBody reads one JSON object of at most MaxRequestLen bytes into v,
// refusing unknown fields.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, federation.MaxRequestLen)
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", federation.MaxRequestLen)}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{http.StatusBadRequest, "invalid_request", "the body is not the JSON object expected: " + err.Error()}
	}
	return nil
}

// leafURL is the leaf node URL a circle that reached the API at r should
// use: the listener's host, or, if it listens on every address, the host
// the circle reached the API by.
func (h *Hub) leafURL(r *http.Request) string {
	host, _, _ := net.SplitHostPort(h.cfg.LeafListen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = r.Host
		if hh, _, err := net.SplitHostPort(r.Host); err == nil {
			host = hh
		}
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(h.leafPort))
}

// apiHandler serves the hub's HTTP API (federation.PathJoin, PathLeave,
// PathStatus).
func (h *Hub) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+federation.PathJoin, func(w http.ResponseWriter, r *http.Request) {
		var req federation.JoinRequest
		if err := decodeBody(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
		resp, err := h.Join(req, h.leafURL(r))
		if err != nil {
			h.log.Info("join refused", "circle", req.CircleID, "err", err)
			writeError(w, err)
			return
		}
		writeJSONResponse(w, http.StatusOK, resp)
	})
	notice := func(do func(federation.SignedNotice) (federation.StatusResponse, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var sn federation.SignedNotice
			if err := decodeBody(w, r, &sn); err != nil {
				writeError(w, err)
				return
			}
			resp, err := do(sn)
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSONResponse(w, http.StatusOK, resp)
		}
	}
	mux.HandleFunc("POST "+federation.PathLeave, notice(h.Leave))
	mux.HandleFunc("POST "+federation.PathStatus, notice(h.Status))
	mux.HandleFunc("POST "+federation.PathExpelVote, notice(h.ExpelVote))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSONResponse(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}

// The control socket (hub.sock in the data directory, 0600 in a 0700
// directory) lets `circled hub invite` and `circled hub expel` change a
// serving hub: they talk to it, so the running server revokes at once.
// Only the hub's own user can reach it.
type controlInvite struct {
	ExpiresIn string `json:"expires_in"`
}

type controlExpel struct {
	CircleID string `json:"circle_id"`
}

func (h *Hub) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /invite", func(w http.ResponseWriter, r *http.Request) {
		var req controlInvite
		if err := decodeBody(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
		ttl, err := time.ParseDuration(req.ExpiresIn)
		if err != nil {
			writeError(w, &apiError{http.StatusBadRequest, "invalid_request", "expires_in must be a Go duration, like 72h"})
			return
		}
		inv, err := h.Invite(ttl)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSONResponse(w, http.StatusOK, inv)
	})
	mux.HandleFunc("POST /expel", func(w http.ResponseWriter, r *http.Request) {
		var req controlExpel
		if err := decodeBody(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
		if err := h.Expel(req.CircleID); err != nil {
			writeError(w, err)
			return
		}
		writeJSONResponse(w, http.StatusOK, map[string]string{"circle_id": req.CircleID, "status": statusExpelled})
	})
	return mux
}
