package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
	"github.com/circles-coop/circles/internal/atomicfile"
)

// Names inside a device's home directory.
const (
	infoFile = "device.json"
	keyFile  = "device.key"
	lockFile = ".lock"
	docsDir  = "docs"
	syncDir  = "sync"
)

// lockHome takes an exclusive lock on the home directory and returns the
// function that releases it.
func lockHome(home string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(home, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock device home: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock device home: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// store keeps a device's documents and sync states on disk.
type store struct {
	home  string
	actor string
}

func (s store) docPath(id string) string {
	return filepath.Join(s.home, docsDir, id+".automerge")
}

func (s store) statePath(id string) string {
	return filepath.Join(s.home, syncDir, id+".state")
}

func (s store) headsPath(id string) string {
	return filepath.Join(s.home, syncDir, id+".heads")
}

// checkID refuses ids that are not automerge document ids, so an id from
// the server can never name a path outside the home directory.
func checkID(id string) error {
	if _, err := crdt.ParseDocID(id); err != nil {
		return fmt.Errorf("document id %q: %w", id, err)
	}
	return nil
}

// has reports whether the document is stored locally.
func (s store) has(id string) bool {
	if checkID(id) != nil {
		return false
	}
	_, err := os.Stat(s.docPath(id))
	return err == nil
}

// loadDoc reads a stored document and sets the device's actor on it. A
// document not stored yet comes back empty with found false.
func (s store) loadDoc(id string) (doc *automerge.Doc, found bool, err error) {
	if err := checkID(id); err != nil {
		return nil, false, err
	}
	data, err := os.ReadFile(s.docPath(id))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		doc = automerge.New()
	case err != nil:
		return nil, false, fmt.Errorf("read document %s: %w", id, err)
	default:
		doc, err = loadAutomerge(data)
		if err != nil {
			return nil, false, fmt.Errorf("load document %s: %w", id, err)
		}
		found = true
	}
	if err := doc.SetActorID(s.actor); err != nil {
		return nil, false, fmt.Errorf("document %s: set actor %q: %w", id, s.actor, err)
	}
	return doc, found, nil
}

// loadAutomerge loads saved document bytes; automerge-go panics on some
// C-level errors, which become errors here.
func loadAutomerge(data []byte) (doc *automerge.Doc, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("automerge: %v", r)
		}
	}()
	return automerge.Load(data)
}

func (s store) saveDoc(id string, doc *automerge.Doc) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := atomicfile.Write(s.docPath(id), doc.Save(), 0o600); err != nil {
		return fmt.Errorf("save document %s: %w", id, err)
	}
	return nil
}

// loadState reads the sync state with the server for a document, or starts
// a new one. It also returns the bytes it was loaded from (nil for new).
func (s store) loadState(id string, doc *automerge.Doc) (*automerge.SyncState, []byte, error) {
	data, err := os.ReadFile(s.statePath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return automerge.NewSyncState(doc), nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read sync state %s: %w", id, err)
	}
	ss, err := decodeState(doc, data)
	if err != nil {
		// A sync state only saves work; a new one is always correct.
		return automerge.NewSyncState(doc), nil, nil
	}
	return ss, data, nil
}

func decodeState(doc *automerge.Doc, data []byte) (ss *automerge.SyncState, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("automerge: %v", r)
		}
	}()
	if data == nil {
		return automerge.NewSyncState(doc), nil
	}
	return automerge.LoadSyncState(doc, data)
}

func (s store) saveState(id string, data []byte) error {
	if err := atomicfile.Write(s.statePath(id), data, 0o600); err != nil {
		return fmt.Errorf("save sync state %s: %w", id, err)
	}
	return nil
}

// syncedHeads reads the heads the document had when it last converged with
// the server; ok is false if it never did.
func (s store) syncedHeads(id string) (heads []automerge.ChangeHash, ok bool) {
	data, err := os.ReadFile(s.headsPath(id))
	if err != nil {
		return nil, false
	}
	for _, line := range strings.Fields(string(data)) {
		h, err := automerge.NewChangeHash(line)
		if err != nil {
			return nil, false
		}
		heads = append(heads, h)
	}
	return heads, true
}

func (s store) saveSyncedHeads(id string, heads []automerge.ChangeHash) error {
	var b strings.Builder
	for _, h := range heads {
		b.WriteString(hex.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	if err := atomicfile.Write(s.headsPath(id), []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("save synced heads %s: %w", id, err)
	}
	return nil
}
