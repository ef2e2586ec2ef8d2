package authority

import "sync"

// tasks runs at most one task per key in its own goroutine; Wait
// blocks until every task has finished. Close waits for it, so no
// goroutine outlives the server.
type tasks struct {
	mu      sync.Mutex
	running map[string]bool
	wg      sync.WaitGroup
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
		fn()
	}()
}

// Wait blocks until all started tasks have returned.
func (b *tasks) Wait() { b.wg.Wait() }

// Go runs fn in its own goroutine, counted by Wait.
func (b *tasks) Go(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}
