package crdt

// Kind names what a document is for; it decides its schema and who may
// write it (DESIGN.md §4).
type Kind string

// The document kinds of a circle.
const (
	KindLedger       Kind = "ledger"        // members/<member>/ledger segment, written by that member's devices
	KindBallots      Kind = "ballots"       // members/<member>/ballots, written by that member's devices
	KindCharterDraft Kind = "charter-draft" // written by any active member's device
	KindCharter      Kind = "charter"       // written by the server only
	KindRoster       Kind = "roster"        // written by the server only
	KindGovernance   Kind = "governance"    // written by the server only
	KindAudit        Kind = "audit"         // written by the server only
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindLedger, KindBallots, KindCharterDraft, KindCharter, KindRoster, KindGovernance, KindAudit:
		return true
	}
	return false
}

// ServerWritten reports whether only the circle server may write documents
// of this kind.
func (k Kind) ServerWritten() bool {
	switch k {
	case KindCharter, KindRoster, KindGovernance, KindAudit:
		return true
	}
	return false
}
