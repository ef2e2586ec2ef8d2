package server

import (
	"sync"

	mobileapi "github.com/circles-coop/circles/mobile-api"
)

// broker hands events to every subscribed client. A slow client misses
// events rather than slowing the server down (its channel is buffered and
// sends never block).
type broker struct {
	mu     sync.Mutex
	subs   map[chan mobileapi.Event]struct{}
	closed bool
}

var _ mobileapi.Events = (*broker)(nil)

func newBroker() *broker { return &broker{subs: make(map[chan mobileapi.Event]struct{})} }

// Subscribe registers a client.
func (b *broker) Subscribe(mobileapi.Caller) (<-chan mobileapi.Event, func()) {
	ch := make(chan mobileapi.Event, 32)
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
		case ch <- mobileapi.Event{Type: typ, Data: data}:
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
