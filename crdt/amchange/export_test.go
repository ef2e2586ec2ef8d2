package amchange

// EncodeBody exposes the canonical encoder to the external tests, which
// check that re-encoding a decoded change gives back an equal change.
var EncodeBody = encodeBody
