package authority

import (
	"runtime/debug"
	"sync"
)

// tasks runs at most one task per key in its own goroutine; Wait
// blocks until every task has finished. Close waits for it, so no
// goroutine outlives the server. A task that panics is recovered and
// handed to onPanic (State.recovered: logged with its stack, counted),
// so one bad task does not end the process.
type tasks struct {
	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
	onPanic func(where string, v any, stack []byte)
}

// run runs fn and turns a panic in it into a call of onPanic.
func (b *tasks) run(fn func()) {
	defer func() {
		if v := recover(); v != nil {
			if b.onPanic != nil {
				b.onPanic("task", v, debug.Stack())
			}
		}
	}()
	fn()
}

// Do starts fn unless a task with the same key is still running.
func (b *tasks) Do(key string, fn func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running == nil {
		b.running = make(map[string]bool)
	}
	if b.running[key] {
		return
	}
	b.running[key] = true
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() {
			b.mu.Lock()
			delete(b.running, key)
			b.mu.Unlock()
		}()
		b.run(fn)
	}()
}

// Wait blocks until all started tasks have returned.
func (b *tasks) Wait() { b.wg.Wait() }

// Go runs fn in its own goroutine, counted by Wait.
func (b *tasks) Go(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.run(fn)
	}()
}
