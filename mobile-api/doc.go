// Package mobileapi is the circle's HTTP API (v1) on echo: routes, the
// bearer-token middleware, request limits, the one table that maps errors
// to API.md's status codes and error bodies, and the OpenAPI description
// served at /v1/openapi.json.
//
// Handlers are thin: authenticate, bind and validate, call a service,
// render. The services are small interfaces, declared beside their routes
// and satisfied by the features of package authority (wired by package
// server); this package holds no business logic. Domain errors
// (authority/fault) and write-rule errors (crdt.RuleError) become statuses
// in errors.go, the one table. The JSON shapes live in package wire and
// the Go client in mobile-api/client.
package mobileapi
