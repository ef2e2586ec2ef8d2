package repo

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ProtocolVersion is the automerge-repo WebSocket protocol version spoken.
const ProtocolVersion = "1"

// Message types of the automerge-repo network protocol.
const (
	TypeJoin           = "join"
	TypePeer           = "peer"
	TypeError          = "error"
	TypeRequest        = "request"
	TypeSync           = "sync"
	TypeDocUnavailable = "doc-unavailable"
	TypeEphemeral      = "ephemeral"
	TypeSubscription   = "remote-subscription-change"
	TypeRemoteHeads    = "remote-heads-changed"
)

// inbound is a message from a client, as far as the server reads it.
// Fields it does not use (newHeads, add, remove, ...) are skipped.
type inbound struct {
	Type     string `cbor:"type"`
	SenderID string `cbor:"senderId"`
	TargetID string `cbor:"targetId"`
	// join: the peer's metadata under its current or its legacy name (the
	// server reads neither), and the versions it speaks (absent means
	// "1"; an empty list means none the server knows).
	PeerMetadata              cbor.RawMessage `cbor:"peerMetadata"`
	Metadata                  cbor.RawMessage `cbor:"metadata"`
	SupportedProtocolVersions *[]string       `cbor:"supportedProtocolVersions"`
	// request, sync, ephemeral, doc-unavailable, remote-heads-changed
	DocumentID string `cbor:"documentId"`
	Data       []byte `cbor:"data"`
}

// peerMessage answers a join.
type peerMessage struct {
	Type                    string         `cbor:"type"`
	SenderID                string         `cbor:"senderId"`
	TargetID                string         `cbor:"targetId"`
	PeerMetadata            map[string]any `cbor:"peerMetadata"`
	SelectedProtocolVersion string         `cbor:"selectedProtocolVersion"`
}

// errorMessage tells the client why the server closes the connection.
type errorMessage struct {
	Type     string `cbor:"type"`
	SenderID string `cbor:"senderId"`
	TargetID string `cbor:"targetId"`
	Message  string `cbor:"message"`
}

// docMessage is a sync or doc-unavailable message.
type docMessage struct {
	Type       string `cbor:"type"`
	SenderID   string `cbor:"senderId"`
	TargetID   string `cbor:"targetId"`
	DocumentID string `cbor:"documentId"`
	Data       []byte `cbor:"data,omitempty"`
}

// ephemeralMessage carries a notice to the document's handle on the client.
type ephemeralMessage struct {
	Type       string `cbor:"type"`
	SenderID   string `cbor:"senderId"`
	TargetID   string `cbor:"targetId"`
	DocumentID string `cbor:"documentId"`
	SessionID  string `cbor:"sessionId"`
	Count      uint64 `cbor:"count"`
	Data       []byte `cbor:"data"`
}

// Notice is the payload (CBOR-encoded into an ephemeral message's data) by
// which the server tells a client that a message it sent for a document
// was refused; docs/ARCHITECTURE.md documents it. Nothing of the refused
// message was applied.
type Notice struct {
	Type string `cbor:"type"` // "refused"
	Doc  string `cbor:"doc"`
	// Changes are the hex hashes of every change the refused message
	// carried (empty when the message could not be decoded).
	Changes []string `cbor:"changes"`
	// Rule names the broken rule (the API's rule names, or "malformed"
	// for bytes that are not an automerge sync message).
	Rule    string `cbor:"rule"`
	Message string `cbor:"message"`
}

// NoticeRefused is the type of a refusal notice.
const NoticeRefused = "refused"

var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxNestedLevels:  16,
		MaxArrayElements: 4096,
		MaxMapPairs:      4096,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthAllowed,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

var encMode = func() cbor.EncMode {
	m, err := cbor.EncOptions{}.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// errMalformed is a frame that is not one CBOR map of the protocol.
var errMalformed = errors.New("malformed message")

// decode parses one frame.
func decode(frame []byte) (inbound, error) {
	var m inbound
	if err := decMode.Unmarshal(frame, &m); err != nil {
		return inbound{}, fmt.Errorf("%w: not a CBOR map of the automerge-repo protocol: %v", errMalformed, err)
	}
	if m.Type == "" {
		return inbound{}, fmt.Errorf("%w: no type", errMalformed)
	}
	if m.SenderID == "" {
		return inbound{}, fmt.Errorf("%w: no senderId", errMalformed)
	}
	return m, nil
}

func encode(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		// The message types above hold strings, bytes and numbers only.
		panic(fmt.Sprintf("repo: encode %T: %v", v, err))
	}
	return b
}
