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

// MaxStreamsPerDevice bounds the event subscriptions of one device: a
// further Subscribe ends the device's oldest one (a client that lost its
// connection without the server noticing gets its slot back at once).
const MaxStreamsPerDevice = 4

// broker hands events to every subscribed client. A slow client misses
// events rather than slowing the server down (its channel is buffered and
// sends never block). It knows each subscriber's caller, so the
// subscriptions of a revoked device or a removed member can be ended
// (endWhere), and a device holds at most MaxStreamsPerDevice of them.
type broker struct {
	mu     sync.Mutex
	subs   map[chan Event]*subscription
	seq    uint64 // orders subscriptions by age
	closed bool
}

type subscription struct {
	caller Caller
	seq    uint64
}

func newBroker() *broker { return &broker{subs: make(map[chan Event]*subscription)} }

// Subscribe registers a client. If c's device already has
// MaxStreamsPerDevice subscriptions, its oldest is ended.
func (b *broker) Subscribe(c Caller) (<-chan Event, func()) {
	ch := make(chan Event, 32)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	var oldest chan Event
	var oldestSeq uint64
	n := 0
	for sch, sub := range b.subs {
		if sub.caller.Member != c.Member || sub.caller.Device != c.Device {
			continue
		}
		n++
		if oldest == nil || sub.seq < oldestSeq {
			oldest, oldestSeq = sch, sub.seq
		}
	}
	if n >= MaxStreamsPerDevice {
		b.end(oldest)
	}
	b.seq++
	b.subs[ch] = &subscription{caller: c, seq: b.seq}
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.end(ch)
	}
}

// end removes and closes subscription ch if it is still there; b.mu held.
func (b *broker) end(ch chan Event) {
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		close(ch)
	}
}

// endWhere ends every subscription whose caller gone reports true. gone
// is called without b.mu held, so it may take other locks.
func (b *broker) endWhere(gone func(Caller) bool) {
	b.mu.Lock()
	callers := make(map[chan Event]Caller, len(b.subs))
	for ch, sub := range b.subs {
		callers[ch] = sub.caller
	}
	b.mu.Unlock()
	var ended []chan Event
	for ch, c := range callers {
		if gone(c) {
			ended = append(ended, ch)
		}
	}
	if len(ended) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range ended {
		b.end(ch)
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
		b.end(ch)
	}
}
