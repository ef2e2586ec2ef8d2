package wire

import (
	"encoding/json"
	"time"
)

// The shapes of a federation's shared documents (API.md "Federation"),
// as package federation/replica keeps them and the API serves them.

// FederationProfile is what a circle says about itself.
type FederationProfile struct {
	Name string `json:"name"`
}

// FederationDelegate is a member of a circle holding an active mandate scoped
// "federation:<id>".
type FederationDelegate struct {
	Member   string    `json:"member"`
	Name     string    `json:"name"`
	Mandate  string    `json:"mandate"`
	Issue    string    `json:"issue"`
	Deadline time.Time `json:"deadline"`
}

// BlueprintOrigin credits where an adopted blueprint came from.
type BlueprintOrigin struct {
	Federation string `json:"federation"`
	CircleID   string `json:"circle_id"`
	Blueprint  string `json:"blueprint"`
}

// Blueprint is a practice a circle publishes for others to copy.
type Blueprint struct {
	ID     string           `json:"id"`
	Title  string           `json:"title"`
	Body   string           `json:"body"`
	Origin *BlueprintOrigin `json:"origin,omitempty"`
}

// FederationProposal is a federation proposal as its author circle wrote it, with
// the votes and status computed from every member's document.
type FederationProposal struct {
	ID           string            `json:"id"`
	Kind         string            `json:"kind"`
	Title        string            `json:"title"`
	Body         string            `json:"body,omitempty"`
	Payload      json.RawMessage   `json:"payload,omitempty"`
	AuthorCircle string            `json:"author_circle"`
	Author       string            `json:"author,omitempty"` // the delegate (member id of the author circle)
	CreatedAt    time.Time         `json:"created_at"`
	Status       string            `json:"status"`
	Votes        map[string]string `json:"votes"`
}

// FederationCredit is hours one circle credited another.
type FederationCredit struct {
	ID       string    `json:"id"`
	From     string    `json:"from_circle"`
	To       string    `json:"to_circle"`
	Amount   float64   `json:"amount"`
	Note     string    `json:"note"`
	Delegate string    `json:"delegate"`
	At       time.Time `json:"at"`
}

// FederationCircleView is one member circle as this circle's replica shows it.
type FederationCircleView struct {
	CircleID   string               `json:"circle_id"`
	Name       string               `json:"name"`
	Profile    FederationProfile    `json:"profile"`
	Scorecard  json.RawMessage      `json:"scorecard"`
	Delegates  []FederationDelegate `json:"delegates"`
	Blueprints []Blueprint          `json:"blueprints"`
	Departed   bool                 `json:"departed"`
}

// FederationView is GET /v1/federations/{id}, served from the replica.
type FederationView struct {
	ID        string                 `json:"id"`
	Name      string                 `json:"name"`
	Status    string                 `json:"status"`
	Connected bool                   `json:"connected"`
	Circles   []FederationCircleView `json:"circles"`
}

// FederationBalance is a circle's inter-circle credit balance in hours.
type FederationBalance struct {
	CircleID string  `json:"circle_id"`
	Balance  float64 `json:"balance"`
}

// FederationProposalRequest is POST /v1/federations/{id}/proposals.
type FederationProposalRequest struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Title   string          `json:"title"`
	Body    string          `json:"body"`
	Payload json.RawMessage `json:"payload"`
}

// FederationCreditRequest is POST /v1/federations/{id}/credits.
type FederationCreditRequest struct {
	ID       string  `json:"id"`
	ToCircle string  `json:"to_circle"`
	Amount   float64 `json:"amount"`
	Note     string  `json:"note"`
}
