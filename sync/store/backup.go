package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamSnapshot is one JetStream stream as JetStream's own snapshot API
// ($JS.API.STREAM.SNAPSHOT) delivers it: the stream's configuration and
// state as the server reported them, and the snapshot archive (an
// s2-compressed tar of the stream's messages, in the server's format).
// RestoreStreams gives it back to a JetStream server, sequences, headers
// and KV revisions as they were.
type StreamSnapshot struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
	State  json.RawMessage `json:"state"`
	Data   []byte          `json:"-"`
}

// Streams names every JetStream stream the store owns: the two document
// streams and the streams behind the KV buckets.
func Streams() []string {
	return []string{
		ChunkStream, SnapshotStream,
		"KV_" + metaBucket, "KV_" + invitesBucket, "KV_" + syncBucket, "KV_" + jtiBucket,
	}
}

// snapshotChunk is the chunk size asked of the server (its default).
const snapshotChunk = 128 << 10

// Snapshot takes a consistent snapshot of every stream the store owns
// (Streams), through JetStream's snapshot API on the store's connection.
//
// Consistency: the store's writes (chunks, snapshots, KV puts, token ids)
// each hold a shared gate for as long as they run; Snapshot holds it
// exclusively from before the first stream's snapshot until the last one
// is received. So every write acknowledged before Snapshot was called is
// in the result, no write is half in it, and all streams are cut at the
// same moment: the result is a state the store was in. Writes that start
// meanwhile wait (for about as long as reading the store takes: it is
// held in memory) and then proceed. JetStream expiring old token ids
// (JTITTL) is the one change that can happen meanwhile; it is harmless.
//
// optional names streams of the circle that are not the store's own (the
// federation's replicas, package federation/replica) to snapshot as well,
// at the same moment, where they exist.
func (s *Store) Snapshot(ctx context.Context, optional ...string) ([]StreamSnapshot, error) {
	s.gate.Lock()
	defer s.gate.Unlock()
	var out []StreamSnapshot
	for _, name := range Streams() {
		snap, err := snapshotStream(ctx, s.nc, s.apiPrefix, name)
		if err != nil {
			return nil, err
		}
		out = append(out, snap)
	}
	for _, name := range optional {
		snap, err := snapshotStream(ctx, s.nc, s.apiPrefix, name)
		if errors.Is(err, errNoStream) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, snap)
	}
	return out, nil
}

// errNoStream: snapshotStream found no stream of that name.
var errNoStream = errors.New("store: no such stream")

// jsStreamNotFound is JetStream's error code for a stream that does not
// exist.
const jsStreamNotFound = 10059

// apiError is the error part of a JetStream API response.
type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s (code %d, error %d)", e.Description, e.Code, e.ErrCode)
}

func snapshotStream(ctx context.Context, nc *nats.Conn, prefix, name string) (StreamSnapshot, error) {
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return StreamSnapshot{}, fmt.Errorf("store: snapshot %s: subscribe: %w", name, err)
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(map[string]any{
		"deliver_subject": inbox,
		"no_consumers":    true,
		"chunk_size":      snapshotChunk,
	})
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := nc.RequestWithContext(rctx, prefix+"STREAM.SNAPSHOT."+name, req)
	if err != nil {
		return StreamSnapshot{}, fmt.Errorf("store: snapshot %s: %w", name, err)
	}
	var r struct {
		Error  *apiError       `json:"error"`
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return StreamSnapshot{}, fmt.Errorf("store: snapshot %s: bad response: %w", name, err)
	}
	if r.Error != nil && r.Error.ErrCode == jsStreamNotFound {
		return StreamSnapshot{}, fmt.Errorf("snapshot %s: %w", name, errNoStream)
	}
	if r.Error != nil {
		return StreamSnapshot{}, fmt.Errorf("store: snapshot %s: %w", name, r.Error)
	}
	snap := StreamSnapshot{Name: name, Config: r.Config, State: r.State}
	var data bytes.Buffer
	for {
		// The server gives up after 5 s without an ack; waiting twice that
		// for its next chunk bounds a stall.
		mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := sub.NextMsgWithContext(mctx)
		cancel()
		if err != nil {
			return StreamSnapshot{}, fmt.Errorf("store: snapshot %s: waiting for the server: %w", name, err)
		}
		if len(m.Data) == 0 {
			// The end: a status header says whether it went well.
			if st := m.Header.Get("Status"); st != "" && st != "204" && st != "200" {
				return StreamSnapshot{}, fmt.Errorf("store: snapshot %s: server status %s %s", name, st, m.Header.Get("Description"))
			}
			snap.Data = data.Bytes()
			return snap, nil
		}
		data.Write(m.Data)
		if m.Reply != "" {
			if err := m.Respond(nil); err != nil {
				return StreamSnapshot{}, fmt.Errorf("store: snapshot %s: ack: %w", name, err)
			}
		}
	}
}

// ErrStreamExists: RestoreStreams found a stream it was to restore.
var ErrStreamExists = errors.New("store: stream already exists")

// RestoreStreams creates every stream of snaps from its snapshot on the
// JetStream server js talks to, through JetStream's restore API, with
// replicas replicas (whatever the snapshot's stream had: a backup of a
// three-node cluster restores onto one embedded server). None of them may
// exist yet (ErrStreamExists): restore into an empty server and Open the
// store afterwards.
func RestoreStreams(ctx context.Context, js jetstream.JetStream, snaps []StreamSnapshot, replicas int) error {
	nc := js.Conn()
	prefix := apiPrefix(js.Options())
	for _, sn := range snaps {
		var cfg map[string]any
		if err := json.Unmarshal(sn.Config, &cfg); err != nil {
			return fmt.Errorf("store: restore %s: its configuration: %w", sn.Name, err)
		}
		if cfg["name"] != sn.Name {
			return fmt.Errorf("store: restore %s: the snapshot's configuration names stream %v", sn.Name, cfg["name"])
		}
		cfg["num_replicas"] = max(replicas, 1)
		delete(cfg, "placement")
		b, err := json.Marshal(cfg)
		if err != nil {
			return fmt.Errorf("store: restore %s: %w", sn.Name, err)
		}
		sn.Config = b
		if _, err := js.Stream(ctx, sn.Name); err == nil {
			return fmt.Errorf("%w: %s", ErrStreamExists, sn.Name)
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("store: restore %s: %w", sn.Name, err)
		}
		if err := restoreStream(ctx, nc, prefix, sn); err != nil {
			return err
		}
	}
	return nil
}

func restoreStream(ctx context.Context, nc *nats.Conn, prefix string, sn StreamSnapshot) error {
	req, err := json.Marshal(struct {
		Config json.RawMessage `json:"config"`
		State  json.RawMessage `json:"state"`
	}{sn.Config, sn.State})
	if err != nil {
		return fmt.Errorf("store: restore %s: %w", sn.Name, err)
	}
	call := func(subj string, data []byte) ([]byte, error) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		m, err := nc.RequestWithContext(rctx, subj, data)
		if err != nil {
			return nil, err
		}
		if len(m.Data) == 0 {
			return nil, nil
		}
		var r struct {
			Error *apiError `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return nil, fmt.Errorf("bad response: %w", err)
		}
		if r.Error != nil {
			return nil, r.Error
		}
		return m.Data, nil
	}
	resp, err := call(prefix+"STREAM.RESTORE."+sn.Name, req)
	if err != nil {
		return fmt.Errorf("store: restore %s: %w", sn.Name, err)
	}
	var r struct {
		DeliverSubject string `json:"deliver_subject"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || r.DeliverSubject == "" {
		return fmt.Errorf("store: restore %s: no deliver subject in %q", sn.Name, resp)
	}
	for off := 0; off < len(sn.Data); off += snapshotChunk {
		end := min(off+snapshotChunk, len(sn.Data))
		if _, err := call(r.DeliverSubject, sn.Data[off:end]); err != nil {
			return fmt.Errorf("store: restore %s: send at byte %d: %w", sn.Name, off, err)
		}
	}
	// An empty message ends the transfer; the answer says how it went.
	if _, err := call(r.DeliverSubject, nil); err != nil {
		return fmt.Errorf("store: restore %s: %w", sn.Name, err)
	}
	return nil
}
