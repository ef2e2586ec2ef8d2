// The bounded queue of frames waiting to be written to one socket.

package repo

import (
	"context"
	"sync"
	"time"
)

// outQueue is the bounded queue of frames waiting to be sent: many
// producers (the reader, the workers), one consumer (the writer).
type outQueue struct {
	max      int
	maxBytes int64

	mu     sync.Mutex
	frames [][]byte
	bytes  int64
	avail  chan struct{} // a frame was queued (cap 1)
	room   chan struct{} // a frame left (cap 1)
}

func (q *outQueue) push(ctx context.Context, frame []byte, wait time.Duration) error {
	var timer *time.Timer
	for {
		q.mu.Lock()
		if len(q.frames) < q.max && (len(q.frames) == 0 || q.bytes+int64(len(frame)) <= q.maxBytes) {
			q.frames = append(q.frames, frame)
			q.bytes += int64(len(frame))
			q.mu.Unlock()
			select {
			case q.avail <- struct{}{}:
			default:
			}
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		}
		select {
		case <-q.room:
		case <-timer.C:
			return errQueueTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (q *outQueue) pop(ctx context.Context) ([]byte, bool) {
	for {
		q.mu.Lock()
		if len(q.frames) > 0 {
			f := q.frames[0]
			q.frames[0] = nil
			q.frames = q.frames[1:]
			if len(q.frames) == 0 {
				q.frames = nil
			}
			q.bytes -= int64(len(f))
			q.mu.Unlock()
			select {
			case q.room <- struct{}{}:
			default:
			}
			return f, true
		}
		q.mu.Unlock()
		select {
		case <-q.avail:
		case <-ctx.Done():
			return nil, false
		}
	}
}
