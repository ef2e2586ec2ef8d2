package amchange

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// syncMessageType is the first byte of an automerge sync message.
const syncMessageType = 0x42

// SplitSyncMessage walks an automerge sync message (type 0x42: heads,
// need, have entries of last-sync hashes and a Bloom filter, then the
// changes, each length-prefixed) and returns the change chunks it carries,
// as sub-slices of data, not decoded. It reads only the framing, so it is
// the cheap way to count a message's changes; a caller that will apply the
// changes still decodes each one (Decode).
func SplitSyncMessage(data []byte) ([][]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("empty")
	}
	if data[0] != syncMessageType {
		return nil, fmt.Errorf("not an automerge sync message (first byte 0x%02x)", data[0])
	}
	r := msgReader{b: data, off: 1}
	for _, what := range []string{"heads", "need"} {
		if err := r.hashes(what); err != nil {
			return nil, err
		}
	}
	nHave, err := r.count("have", 2)
	if err != nil {
		return nil, err
	}
	for range nHave {
		if err := r.hashes("have.lastSync"); err != nil {
			return nil, err
		}
		if _, err := r.bytes("have.bloom"); err != nil {
			return nil, err
		}
	}
	n, err := r.count("changes", 1)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, n)
	for range n {
		b, err := r.bytes("change")
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

type msgReader struct {
	b   []byte
	off int
}

func (r *msgReader) uleb(what string) (uint64, error) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, fmt.Errorf("%s: bad or truncated length", what)
	}
	r.off += n
	return v, nil
}

// count reads a count of items that take at least minSize bytes each, so
// a count the rest of the message cannot hold is refused before anything
// is allocated for it.
func (r *msgReader) count(what string, minSize int) (int, error) {
	v, err := r.uleb(what)
	if err != nil {
		return 0, err
	}
	if v > uint64((len(r.b)-r.off)/minSize) {
		return 0, fmt.Errorf("%s: %d items do not fit in the message", what, v)
	}
	return int(v), nil
}

func (r *msgReader) hashes(what string) error {
	n, err := r.count(what, 32)
	if err != nil {
		return err
	}
	r.off += 32 * n
	return nil
}

func (r *msgReader) bytes(what string) ([]byte, error) {
	n, err := r.count(what, 1)
	if err != nil {
		return nil, err
	}
	b := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return b, nil
}
