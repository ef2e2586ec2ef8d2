package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxMessage bounds one message this package publishes: under the hub's
// default 1 MB max payload, with room for headers.
const MaxMessage = 900 << 10

// MaxChange bounds one change; a larger one is refused (a circle's own
// writes are far smaller: strings are bounded where they are made).
const MaxChange = 256 << 10

// errFrame is a malformed framed message.
var errFrame = errors.New("malformed change frame")

// frame packs changes into messages of at most MaxMessage bytes each:
// every change is a uvarint length followed by its bytes.
func frame(changes [][]byte) [][]byte {
	var out [][]byte
	var cur []byte
	for _, c := range changes {
		need := binary.MaxVarintLen64 + len(c)
		if len(cur) > 0 && len(cur)+need > MaxMessage {
			out = append(out, cur)
			cur = nil
		}
		cur = binary.AppendUvarint(cur, uint64(len(c)))
		cur = append(cur, c...)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// unframe splits a message made by frame; it never allocates more than
// the message's size.
func unframe(msg []byte) ([][]byte, error) {
	var out [][]byte
	for len(msg) > 0 {
		n, k := binary.Uvarint(msg)
		if k <= 0 || n == 0 || n > MaxChange || n > uint64(len(msg)-k) {
			return nil, fmt.Errorf("%w: bad length", errFrame)
		}
		out = append(out, msg[k:k+int(n)])
		msg = msg[k+int(n):]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty", errFrame)
	}
	return out, nil
}
