package wire

// FederationCircle is a member circle of a federation.
type FederationCircle struct {
	CircleID string `json:"circle_id"`
	Name     string `json:"name"`
}

// Federation is one of the circle's federations (GET /v1/federations):
// Status is "joining", "joined", "left" or "expelled"; Connected says
// whether the circle's leaf link to the hub is up now.
type Federation struct {
	ID        string             `json:"id"`
	Name      string             `json:"name"`
	Status    string             `json:"status"`
	Connected bool               `json:"connected"`
	Circles   []FederationCircle `json:"circles"`
}

// Federations is GET /v1/federations.
type Federations struct {
	Federations []Federation `json:"federations"`
}
