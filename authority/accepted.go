package authority

// A record Accept returns is stored with its chunk, as JSON, and the
// engine hands it back to Committed once the store acknowledged the
// chunk. Decoding that JSON again cost as much as checking the changes
// that made it, so Accept keeps the record it encoded beside the
// document, and Committed takes it from there instead: the same bytes
// (the engine passes the slice Accept returned) stand for the same value.
// Records that never reach Committed — the request failed or was refused
// after Accept — are dropped with the document (Unloaded), because the
// engine unloads a document whenever a request that touched it fails. A
// record Committed does not find there (replay at start, a record of
// another path) is decoded as before.

// acceptedRecord is a record Accept returned and the value it encodes.
type acceptedRecord struct {
	data *byte // the returned slice's first byte (records are never empty): its identity
	rec  chunkRecord
}

// record encodes rec as the record of doc's chunk and keeps it for
// Committed. The caller holds the document's lock.
func (s *Policy) record(doc string, rec chunkRecord) []byte {
	b := mustJSON(rec)
	s.updateDoc(doc, func(info *docInfo) {
		info.accepted = append(info.accepted, acceptedRecord{data: &b[0], rec: rec})
	})
	return b
}

// takeAccepted returns and forgets the records Accept kept for doc. The
// caller holds the document's lock.
func (s *State) takeAccepted(doc string) (out []acceptedRecord) {
	s.updateDoc(doc, func(info *docInfo) { out, info.accepted = info.accepted, nil })
	return out
}

// findAccepted returns the value of the record raw, if Accept made it.
func findAccepted(accepted []acceptedRecord, raw []byte) (chunkRecord, bool) {
	if len(raw) == 0 {
		return chunkRecord{}, false
	}
	for _, a := range accepted {
		if a.data == &raw[0] {
			return a.rec, true
		}
	}
	return chunkRecord{}, false
}
