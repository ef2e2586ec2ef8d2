package servertest

import (
	"sync/atomic"
	"time"
)

// Clock is a test clock that a test moves forward with Set. Its zero value
// follows the wall clock; a Clock made by FixedClock stands still at its
// start, so that times the server writes are the same in every run.
// Pass its Now to WithClock.
type Clock struct {
	base   time.Time // zero: the wall clock
	offset atomic.Int64
}

// FixedClock returns a clock that stands at start until Set moves it.
func FixedClock(start time.Time) *Clock { return &Clock{base: start} }

// Now is the clock's time: its start (or the wall clock) plus the offset.
func (c *Clock) Now() time.Time {
	base := c.base
	if base.IsZero() {
		base = time.Now()
	}
	return base.Add(time.Duration(c.offset.Load()))
}

// Set moves the clock to offset after its start (or after the wall clock).
func (c *Clock) Set(offset time.Duration) { c.offset.Store(int64(offset)) }
