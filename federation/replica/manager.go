package replica

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/circles-coop/circles/authority/fault"
)

// ManagerConfig configures a circle's Manager.
type ManagerConfig struct {
	Circle string              // this circle's id
	JS     jetstream.JetStream // the circle's own JetStream
	// Replicas is the federation stream's replica count, the store's own
	// (1 embedded; 3 on a three-node cluster). 0 means 1.
	Replicas int
	Source   Source
	// OnDecided is passed to every replica (Config.OnDecided).
	OnDecided func(federation string, p Proposal)
	// AnnounceEvery and RefreshEvery are passed to every replica.
	AnnounceEvery time.Duration
	RefreshEvery  time.Duration
	// MaxReplicaBytes is passed to every replica.
	MaxReplicaBytes int
	Logger          *slog.Logger
	Now             func() time.Time
}

// Manager holds a circle's replicas, one per federation it belongs to,
// and the circle's blueprints, which it publishes in every federation.
type Manager struct {
	cfg ManagerConfig
	st  *docStore

	mu         sync.Mutex
	replicas   map[string]*Replica
	blueprints map[string]Blueprint
}

// NewManager returns a Manager; call Open.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, replicas: map[string]*Replica{}, blueprints: map[string]Blueprint{}}
}

// Open creates the FEDERATION stream if needed and loads the blueprints.
func (m *Manager) Open(ctx context.Context) error {
	st, err := openDocStore(ctx, m.cfg.JS, m.cfg.Replicas)
	if err != nil {
		return err
	}
	m.st = st
	data, err := st.loadBlueprints(ctx)
	if err != nil {
		return fmt.Errorf("load blueprints: %w", err)
	}
	if data != nil {
		var list []Blueprint
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("load blueprints: %w", err)
		}
		for _, b := range list {
			m.blueprints[b.ID] = b
		}
	}
	return nil
}

// Attach starts the replica of federation on nc, a connection to the
// circle's own nats-server whose leaf link reaches the federation's hub.
// It is the seam the federation link (join) calls; attaching twice
// returns the running replica.
func (m *Manager) Attach(ctx context.Context, nc *nats.Conn, federation, name string) (*Replica, error) {
	if !ValidID(federation) {
		return nil, fmt.Errorf("federation id %q is not a subject token", federation)
	}
	if !ValidID(m.cfg.Circle) {
		return nil, fmt.Errorf("circle id %q is not a subject token", m.cfg.Circle)
	}
	m.mu.Lock()
	if r, ok := m.replicas[federation]; ok {
		m.mu.Unlock()
		return r, nil
	}
	m.mu.Unlock()
	// Opened without m.mu: the replica's first refresh reads Blueprints.
	r := newReplica(Config{
		Federation: federation, Name: name, Circle: m.cfg.Circle, Conn: nc, Source: m.cfg.Source,
		Blueprints: m.Blueprints, OnDecided: m.cfg.OnDecided,
		AnnounceEvery: m.cfg.AnnounceEvery, RefreshEvery: m.cfg.RefreshEvery, MaxReplicaBytes: m.cfg.MaxReplicaBytes, Logger: m.cfg.Logger,
	}, m.st)
	if err := r.open(ctx); err != nil {
		return nil, err // nothing started
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if other, ok := m.replicas[federation]; ok { // attached meanwhile
		r.close()
		return other, nil
	}
	m.replicas[federation] = r
	return r, nil
}

// Detach stops federation's replica; what it stored stays.
func (m *Manager) Detach(federation string) {
	m.mu.Lock()
	r, ok := m.replicas[federation]
	delete(m.replicas, federation)
	m.mu.Unlock()
	if ok {
		r.close()
	}
}

// Replica returns federation's replica, or a not_found fault.
func (m *Manager) Replica(federation string) (*Replica, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.replicas[federation]; ok {
		return r, nil
	}
	return nil, fault.Errorf(fault.NotFound, "this circle is not in federation %q", federation)
}

// RefreshAll makes every replica reread the Source now (a mandate ended).
func (m *Manager) RefreshAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.replicas {
		r.Refresh()
	}
}

// Close stops every replica.
func (m *Manager) Close() {
	m.mu.Lock()
	rs := m.replicas
	m.replicas = map[string]*Replica{}
	m.mu.Unlock()
	for _, r := range rs {
		r.close()
	}
}

// Blueprints lists the circle's blueprints by id.
func (m *Manager) Blueprints() []Blueprint {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Blueprint, 0, len(m.blueprints))
	for _, b := range m.blueprints {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PublishBlueprint adds a blueprint of this circle's own and publishes it
// in every federation. The same blueprint again is a safe retry (created
// false); another with the same id is a conflict.
func (m *Manager) PublishBlueprint(ctx context.Context, b Blueprint) (Blueprint, bool, error) {
	if !ValidID(b.ID) {
		return Blueprint{}, false, fault.Errorf(fault.InvalidRequest, "id must be 1 to 64 letters, digits, '-' or '_'")
	}
	if b.Title == "" || len(b.Title) > MaxTitle {
		return Blueprint{}, false, fault.Errorf(fault.InvalidRequest, "title must be 1 to %d bytes", MaxTitle)
	}
	if b.Body == "" || len(b.Body) > MaxBody {
		return Blueprint{}, false, fault.Errorf(fault.InvalidRequest, "body must be 1 to %d bytes", MaxBody)
	}
	return m.add(ctx, b)
}

// AdoptBlueprint copies circle's blueprint id, as this circle's replica
// of federation holds it, into this circle's own blueprints, crediting
// its origin.
func (m *Manager) AdoptBlueprint(ctx context.Context, id, federation, circle string) (Blueprint, bool, error) {
	if !ValidID(federation) {
		return Blueprint{}, false, fault.Errorf(fault.InvalidRequest, "federation must name a federation")
	}
	if !ValidID(circle) {
		return Blueprint{}, false, fault.Errorf(fault.InvalidRequest, "circle_id must name a circle")
	}
	if circle == m.cfg.Circle {
		return Blueprint{}, false, fault.Errorf(fault.InvalidRequest, "circle_id: a circle cannot adopt its own blueprint")
	}
	r, err := m.Replica(federation)
	if err != nil {
		return Blueprint{}, false, err
	}
	src, ok := r.Blueprint(circle, id)
	if !ok {
		return Blueprint{}, false, fault.Errorf(fault.NotFound, "circle %s publishes no blueprint %s in federation %s", circle, id, federation)
	}
	origin := src.Origin
	if origin == nil { // credit the circle that wrote it, not the last copier
		origin = &Origin{Federation: federation, CircleID: circle, Blueprint: id}
	}
	return m.add(ctx, Blueprint{ID: id, Title: src.Title, Body: src.Body, Origin: origin})
}

func (m *Manager) add(ctx context.Context, b Blueprint) (Blueprint, bool, error) {
	m.mu.Lock()
	if old, ok := m.blueprints[b.ID]; ok {
		m.mu.Unlock()
		same := old.Title == b.Title && old.Body == b.Body && (old.Origin == nil) == (b.Origin == nil) && (old.Origin == nil || *old.Origin == *b.Origin)
		if same {
			return old, false, nil
		}
		return Blueprint{}, false, fault.Errorf(fault.Conflict, "this circle already has a blueprint %s", b.ID)
	}
	next := make([]Blueprint, 0, len(m.blueprints)+1)
	for _, x := range m.blueprints {
		next = append(next, x)
	}
	next = append(next, b)
	sort.Slice(next, func(i, j int) bool { return next[i].ID < next[j].ID })
	data, _ := json.Marshal(next)
	if err := m.st.saveBlueprints(ctx, data); err != nil {
		m.mu.Unlock()
		return Blueprint{}, false, fmt.Errorf("store blueprint: %w", err)
	}
	m.blueprints[b.ID] = b
	rs := make([]*Replica, 0, len(m.replicas))
	for _, r := range m.replicas {
		rs = append(rs, r)
	}
	m.mu.Unlock()
	for _, r := range rs {
		r.Refresh()
	}
	return b, true, nil
}
