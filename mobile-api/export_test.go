package mobileapi

// DecodeJSON is decodeJSON, for the fuzz test of the sync request path.
var DecodeJSON = decodeJSON
