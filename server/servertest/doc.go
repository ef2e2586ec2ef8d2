// Package servertest starts real circle servers for tests and talks to
// them over their API v1, so that a test reads as a specification.
//
// Start (or Init, then Circle.Start) serves a real circle: a data
// directory under t.TempDir(), embedded NATS with JetStream, HTTP on
// 127.0.0.1 with a free port; the test's cleanup stops it. WithClock gives
// the server a test's Clock: the zero Clock follows the wall clock,
// FixedClock stands still, and Set moves either forward.
//
// The Must helpers do one thing a test needs and fail it otherwise; they
// call tb.Helper. MustEnroll enrols a Device (its key, actor, member and
// device ids and access token), MustInvite makes invites, MustCircle reads
// GET /v1/circle, MustSign signs device assertions and forged tokens,
// MustRefresh trades an assertion for a new token, MustPull and
// MustChangeMessage sync a document and prepare a write as a sync message,
// and MustStoredDocs with MustStoreUnchanged prove that a refused request
// changed no stored byte. Call sends one request and returns its Response
// (status, API error code, body) whatever the status.
//
// A Scenario is one request of a table-driven API test and what must come
// of it (status, error code, words or a check of the body), with hooks
// before and after; RunScenarios runs a table of them as subtests, in
// order. Client is the same API for the goroutines of benchmarks: its
// methods return errors instead of failing a test.
package servertest
