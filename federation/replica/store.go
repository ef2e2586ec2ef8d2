package replica

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/automerge/automerge-go"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamName is the JetStream stream, in the circle's own store, that
// keeps the circle's federated documents and its replicas of every other
// member's. Its subjects (fedstore.>) are local: the leaf user may
// publish only fed.<F>.c.<circle>.>, so nothing of it crosses the link.
const StreamName = "FEDERATION"

const (
	storePrefix    = "fedstore."
	snapshotHeader = "Circles-Snapshot"
	// compactAfter is the number of incremental chunks of one document
	// after which its stored chunks are replaced by one snapshot.
	compactAfter = 256
)

// docStore appends a document's changes to its own subject and replaces
// them with a snapshot now and then.
type docStore struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

func openDocStore(ctx context.Context, js jetstream.JetStream, replicas int) (*docStore, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "federated documents of this circle and replicas of the other members' (federation/replica)",
		Subjects:    []string{storePrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxMsgSize:  8 << 20,
		Replicas:    max(replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("federation stream: %w", err)
	}
	return &docStore{js: js, stream: st}, nil
}

func ownSubject(federation string) string { return storePrefix + federation + ".own" }
func replicaSubject(federation, circle string) string {
	return storePrefix + federation + ".r." + circle
}
func decidedSubject(federation string) string { return storePrefix + federation + ".decided" }
func blueprintsSubject() string               { return storePrefix + "_circle.blueprints" }

// storedDoc is a document read back, and how many chunks it is stored in.
type storedDoc struct {
	doc    *automerge.Doc
	chunks int
}

// loadAll reads every message under fedstore.<federation>.>: documents by
// subject, and the decided proposal ids.
func (s *docStore) loadAll(ctx context.Context, federation string) (map[string]*storedDoc, map[string]bool, error) {
	docs := map[string]*storedDoc{}
	decided := map[string]bool{}
	filter := storePrefix + federation + ".>"
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, nil, err
	}
	if len(info.State.Subjects) == 0 {
		return docs, decided, nil
	}
	cons, err := s.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, nil, err
	}
	for {
		batch, err := cons.Fetch(512, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, nil, err
		}
		n := 0
		var pending uint64 = 1
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, nil, err
			}
			pending = md.NumPending
			subj := m.Subject()
			if subj == decidedSubject(federation) {
				decided[string(m.Data())] = true
				continue
			}
			sd := docs[subj]
			if m.Headers().Get(snapshotHeader) != "" || sd == nil {
				d, err := automerge.Load(m.Data())
				if err != nil {
					return nil, nil, fmt.Errorf("load %s: %w", subj, err)
				}
				docs[subj] = &storedDoc{doc: d, chunks: 1}
				continue
			}
			if err := sd.doc.LoadIncremental(m.Data()); err != nil {
				return nil, nil, fmt.Errorf("load %s: %w", subj, err)
			}
			sd.chunks++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, nil, err
		}
		if n == 0 || pending == 0 {
			return docs, decided, nil
		}
	}
}

// append stores the changes of d since its last SaveIncremental, and
// compacts when the subject has many chunks. It returns the new count.
func (s *docStore) append(ctx context.Context, subject string, d *automerge.Doc, chunks int) (int, error) {
	inc := d.SaveIncremental()
	if len(inc) == 0 {
		return chunks, nil
	}
	if chunks >= compactAfter {
		return s.snapshot(ctx, subject, d)
	}
	if _, err := s.js.Publish(ctx, subject, inc); err != nil {
		return chunks, fmt.Errorf("store %s: %w", subject, err)
	}
	return chunks + 1, nil
}

// appendChunk stores chunk (changes of d) and compacts when the subject
// has many chunks. It returns the new count.
func (s *docStore) appendChunk(ctx context.Context, subject string, chunk []byte, d *automerge.Doc, chunks int) (int, error) {
	if chunks >= compactAfter {
		return s.snapshot(ctx, subject, d)
	}
	if _, err := s.js.Publish(ctx, subject, chunk); err != nil {
		return chunks, fmt.Errorf("store %s: %w", subject, err)
	}
	return chunks + 1, nil
}

// snapshot stores the whole document and purges the older chunks.
func (s *docStore) snapshot(ctx context.Context, subject string, d *automerge.Doc) (int, error) {
	msg := nats.NewMsg(subject)
	msg.Header.Set(snapshotHeader, "1")
	msg.Data = d.Save()
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", subject, err)
	}
	if err := s.stream.Purge(ctx, jetstream.WithPurgeSubject(subject), jetstream.WithPurgeSequence(ack.Sequence)); err != nil {
		return 1, fmt.Errorf("purge %s: %w", subject, err)
	}
	return 1, nil
}

func (s *docStore) markDecided(ctx context.Context, federation, proposal string) error {
	_, err := s.js.Publish(ctx, decidedSubject(federation), []byte(proposal))
	return err
}

func (s *docStore) saveBlueprints(ctx context.Context, data []byte) error {
	_, err := s.js.Publish(ctx, blueprintsSubject(), data)
	return err
}

func (s *docStore) loadBlueprints(ctx context.Context) ([]byte, error) {
	m, err := s.stream.GetLastMsgForSubject(ctx, blueprintsSubject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
