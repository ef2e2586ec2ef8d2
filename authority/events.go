package authority

import "sync"

// Caller is the authenticated device behind a request: the member, the
// device and the automerge actor it writes with.
type Caller struct {
	Member string
	Device string
	Actor  string
}

// Event is something connected clients are told at once (GET /v1/events).
type Event struct {
	Type string
	Data any
}

// broker hands events to every subscribed client. A slow client misses
// events rather than slowing the server down (its channel is buffered and
// sends never block).
type broker struct {
	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed bool
}

func newBroker() *broker { return &broker{subs: make(map[chan Event]struct{})} }

// Subscribe registers a client.
func (b *broker) Subscribe(Caller) (<-chan Event, func()) {
	ch := make(chan Event, 32)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	b.subs[ch] = struct{}{}
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// Publish sends an event to every subscriber that has room for it.
func (b *broker) Publish(typ string, data any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- Event{Type: typ, Data: data}:
		default:
		}
	}
}

// Close ends every subscription, so event streams end and the HTTP server
// can shut down.
func (b *broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}
