package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// Batched direct gets (nats-server 2.11+): one request returns up to
// scanBatch messages of a stream matching a subject, followed by an
// end-of-batch status message. The server reads the batch under the
// stream's read lock, so a batch never interleaves with a write.
const (
	scanBatch    = 4096
	scanMaxBytes = 8 << 20

	hdrStatus      = "Status"
	hdrDescription = "Description"
	hdrSequence    = "Nats-Sequence"
	hdrSubject     = "Nats-Subject"
	hdrNumPending  = "Nats-Num-Pending"
	hdrLastSeq     = "Nats-Last-Sequence"
)

// directGetRequest is the JSON body of a batched direct get
// (server.JSApiMsgGetRequest).
type directGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// scan calls fn, in stream order, for every message of stream whose subject
// matches filter and whose sequence is >= from. It needs AllowDirect on the
// stream. Each round trip is bounded by ctx, or by the JetStream default
// timeout when ctx has no deadline.
func (s *Store) scan(ctx context.Context, stream, filter string, from uint64, fn func(subj string, seq uint64, data []byte) error) error {
	inbox := s.nc.NewInbox()
	// A round brings at most scanBatch messages and one status, and the
	// next request goes out only when a round is read, so this channel
	// never fills. (SubscribeSync would make one of the connection's
	// default 65,536 slots: half a megabyte for every document loaded.)
	msgs := make(chan *nats.Msg, scanBatch+8)
	sub, err := s.nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	subject := s.apiPrefix + "DIRECT.GET." + stream

	for {
		req, err := json.Marshal(directGetRequest{Seq: from, NextFor: filter, Batch: scanBatch, MaxBytes: scanMaxBytes})
		if err != nil {
			return err
		}
		more, next, err := s.scanRound(ctx, msgs, subject, inbox, req, fn)
		if err != nil || !more {
			return err
		}
		from = next
	}
}

// scanRound sends one batch request and reads its replies. It reports
// whether messages remain and from which sequence to continue.
func (s *Store) scanRound(ctx context.Context, msgs <-chan *nats.Msg, subject, inbox string, req []byte, fn func(subj string, seq uint64, data []byte) error) (more bool, next uint64, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.js.Options().DefaultTimeout)
		defer cancel()
	}
	if err := s.nc.PublishRequest(subject, inbox, req); err != nil {
		return false, 0, err
	}
	var last uint64
	for {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
			return false, 0, ctx.Err()
		}
		switch status := m.Header.Get(hdrStatus); status {
		case "":
			seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
			if err != nil {
				return false, 0, fmt.Errorf("direct get on %s: bad %s header: %w", subject, hdrSequence, err)
			}
			last = seq
			if err := fn(m.Header.Get(hdrSubject), seq, m.Data); err != nil {
				return false, 0, err
			}
		case "204": // end of batch
			pending, err := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
			if err != nil {
				return false, 0, fmt.Errorf("direct get on %s: bad %s header: %w", subject, hdrNumPending, err)
			}
			if pending == 0 {
				return false, 0, nil
			}
			if l, err := strconv.ParseUint(m.Header.Get(hdrLastSeq), 10, 64); err == nil && l > last {
				last = l
			}
			if last == 0 {
				return false, 0, fmt.Errorf("direct get on %s: %d pending but no message sent", subject, pending)
			}
			return true, last + 1, nil
		case "404": // nothing (more) matches
			return false, 0, nil
		case "503":
			return false, 0, fmt.Errorf("direct get on %s: no responders (stream missing or without AllowDirect)", subject)
		default:
			return false, 0, fmt.Errorf("direct get on %s: status %s %s", subject, status, m.Header.Get(hdrDescription))
		}
	}
}
