package engine

import (
	"encoding/binary"

	"github.com/automerge/automerge-go"
)

// The in-sync answer on a live session (the automerge-repo WebSocket
// transport): a device that imported a document's stored snapshot and
// says so in its first message for it — no change, exactly the
// snapshot's heads — is answered from those heads without loading the
// document, as Sync answers it (snapshots.go).
//
// Unlike Sync, a session keeps a sync state per document and pushes later
// changes to the documents it watches, so the answer must leave both as
// an ordinary exchange would:
//
//   - the session watches the document BEFORE the snapshot is checked:
//     a write stored from then on notifies the session (and its change is
//     pushed), and a write stored before has dropped the remembered
//     snapshot (persist), so the check fails and the ordinary sync runs.
//     Checking first and watching after would let a write that lands in
//     between go unnoticed: the device believes it holds everything while
//     the server holds more, until some later write wakes the document;
//   - the session's saved sync state for the document becomes one that
//     shares those heads with the peer, so the next message the session
//     generates (a push) tells the peer what follows them;
//   - only for a document the session has not exchanged before: its live
//     sync state would miss this exchange (stale "in flight" and "their
//     heads"), so later messages take the ordinary path.

// inSync answers a session's change-less message for doc from the
// remembered snapshot when the peer holds exactly it; ok is false when the
// ordinary sync must run.
func (s *Session) inSync(doc string, data []byte) ([]byte, bool) {
	s.mu.Lock()
	first := !s.closed && !s.watched[doc]
	if first {
		s.watched[doc] = true
	}
	s.mu.Unlock()
	if !first {
		return nil, false
	}
	s.e.watch(doc, s)
	heads, ok := s.e.inSyncHeads(doc, [][]byte{data})
	if !ok {
		return nil, false
	}
	if afterInSyncCheck != nil {
		afterInSyncCheck(doc)
	}
	s.mu.Lock()
	if !s.closed {
		s.saved[doc] = encodeSyncState(heads)
	}
	s.mu.Unlock()
	return encodeInSync(heads), true
}

// afterInSyncCheck, if set (tests only, before any session runs), is
// called between the snapshot check and the answer: a test stores a
// write there, in the window the watch-first order closes.
var afterInSyncCheck func(doc string)

// encodeSyncState is the persistent form of a sync state whose shared
// heads are heads (what automerge's SyncState.Save writes: 0x43, then the
// hashes as a LEB128 count and 32 bytes each).
func encodeSyncState(heads []automerge.ChangeHash) []byte {
	b := make([]byte, 0, 2+32*len(heads))
	b = append(b, 0x43)
	b = binary.AppendUvarint(b, uint64(len(heads)))
	for _, h := range heads {
		b = append(b, h[:]...)
	}
	return b
}
