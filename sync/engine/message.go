package engine

import (
	"fmt"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// Change is one change of an incoming message, decoded once: the policy
// checks its operations before anything is applied, and the engine keeps
// the decoded form for as long as it needs the change. Its accessors read
// the decoded form (no call into automerge).
type Change struct {
	Decoded *amchange.Change
	raw     []byte // the change chunk as the message carries it
}

// Hash returns the change's hash.
func (c Change) Hash() automerge.ChangeHash { return automerge.ChangeHash(c.Decoded.Hash) }

// ActorID returns the hex actor id of the change's author.
func (c Change) ActorID() string { return c.Decoded.Actor }

// Message returns the change's commit message.
func (c Change) Message() string { return c.Decoded.Message }

// Save returns the change chunk as it was received.
func (c Change) Save() []byte { return c.raw }

// Ops returns the number of operations of the change.
func (c Change) Ops() int { return len(c.Decoded.Ops) }

// maxMessageBytes bounds one sync message; transports enforce their own,
// usually smaller, body limits first.
const maxMessageBytes = 16 << 20

// DecodeMessage parses an untrusted sync message and returns its changes,
// or an error wrapping ErrBadMessage. Sync calls it on every message
// before anything is applied; it is exported for fuzzing and tools.
func DecodeMessage(data []byte) ([]Change, error) { return decodeMessage(data) }

// decodeMessage parses an untrusted sync message and decodes every change
// it carries. Each change must decode, and be in automerge's canonical
// encoding, before automerge may apply it: a crafted change can abort the
// process inside automerge-rs (which no recover catches) or leave a
// document that no longer loads.
//
// The message is parsed here, in Go, once; automerge parses it again only
// when it applies it (receive). The engine does not rely on the two
// parsers agreeing: after applying, it checks that what entered the
// document is exactly what it expected from these changes (applied.go),
// and refuses the message otherwise.
func decodeMessage(data []byte) ([]Change, error) {
	raws, err := splitMessage(data)
	if err != nil {
		return nil, err
	}
	return decodeChanges(raws)
}

// splitMessage checks an untrusted sync message's framing and returns the
// change chunks it carries, not yet decoded: cheap, so that a message
// can wait for its turn to be applied (Config.MaxApplying) before its
// changes take memory as decoded operations.
func splitMessage(data []byte) ([][]byte, error) {
	if len(data) > maxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrBadMessage, len(data), maxMessageBytes)
	}
	raws, err := amchange.SplitSyncMessage(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return raws, nil
}

// decodeChanges decodes the change chunks of a message (splitMessage);
// a change that comes twice is kept once.
func decodeChanges(raws [][]byte) ([]Change, error) {
	changes := make([]Change, 0, len(raws))
	seen := make(map[[32]byte]bool, len(raws))
	for i, raw := range raws {
		dc, err := amchange.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: change %d: %v", ErrBadMessage, i, err)
		}
		if seen[dc.Hash] {
			continue // automerge applies a change once, however often it comes
		}
		seen[dc.Hash] = true
		changes = append(changes, Change{Decoded: dc, raw: raw})
	}
	return changes, nil
}

// receive applies a message that decodeMessage accepted.
func receive(ss *automerge.SyncState, data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrBadMessage, r)
		}
	}()
	if _, err := ss.ReceiveMessage(data); err != nil {
		return fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	return nil
}

// generate returns the next message for the peer, if any.
func generate(ss *automerge.SyncState) (msg []byte, ok bool) {
	sm, ok := ss.GenerateMessage()
	if !ok {
		return nil, false
	}
	return sm.Bytes(), true
}
