package engine

import (
	"fmt"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// Change is one change of an incoming message: automerge's handle and the
// decoded operations, which policies check before anything is applied.
type Change struct {
	*automerge.Change
	Decoded *amchange.Change
}

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
// document that no longer loads. automerge-go also panics on some C-level
// errors; those panics are recovered here, where the untrusted bytes enter.
func decodeMessage(data []byte) (changes []Change, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadMessage)
	}
	if len(data) > maxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrBadMessage, len(data), maxMessageBytes)
	}
	if data[0] != 0x42 {
		return nil, fmt.Errorf("%w: not an automerge sync message (first byte 0x%02x)", ErrBadMessage, data[0])
	}
	defer func() {
		if r := recover(); r != nil {
			changes, err = nil, fmt.Errorf("%w: %v", ErrBadMessage, r)
		}
	}()
	sm, err := automerge.LoadSyncMessage(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	raw := sm.Changes()
	changes = make([]Change, len(raw))
	for i, ch := range raw {
		dc, err := amchange.Decode(ch.Save())
		if err != nil {
			return nil, fmt.Errorf("%w: change %d: %v", ErrBadMessage, i, err)
		}
		if dc.Hash != ch.Hash() {
			return nil, fmt.Errorf("%w: change %d: hash mismatch", ErrBadMessage, i)
		}
		changes[i] = Change{Change: ch, Decoded: dc}
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
