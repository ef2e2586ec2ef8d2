// Measured memory: the estimate of a loaded document (memory.go) is a
// guess from its stored bytes, changes and operations, and it falls
// behind as documents grow (in a soak of 200 phones the C heap held 1.6×
// the estimate after eight minutes, and climbing). Once a second the
// engine measures the C heap that automerge allocates from and keeps the
// ratio of measured to estimated bytes; eviction counts loaded documents
// at the estimate times that ratio, so that what automerge really holds
// stays within the budget.

package engine

import "sync/atomic"

// scaleOne is a ratio of 1 in memScale's fixed point.
const scaleOne = 1 << 10

// maxScale bounds the ratio: C memory that loaded documents do not
// explain (requests in flight, sync messages being parsed) must not
// make the engine evict every document.
const maxScale = 4 * scaleOne

// memScale is the measured C heap per estimated byte of loaded
// documents, in 1/1024ths, at least scaleOne (never below the estimate).
type memScale struct{ v atomic.Int64 }

func (s *memScale) get() int64 {
	if v := s.v.Load(); v > scaleOne {
		return v
	}
	return scaleOne
}

// scaled is the loaded bytes as measured: the estimate times the ratio.
func (s *memScale) scaled(loaded int64) int64 { return loaded / scaleOne * s.get() }

// measure updates the ratio from the C heap in use and the loaded
// estimate: half the old ratio, half the new, so that one busy moment
// does not empty the engine. Measurements taken while evicted documents
// wait for collection (live > loaded) are skipped. With little loaded
// (under a quarter of the budget) what is not a document dominates the
// heap, so nothing is measured and the ratio goes halfway back to 1:
// otherwise a ratio of 4 would keep the engine at a quarter of its
// budget, where it is never measured again, for good.
func (s *memScale) measure(cInUse, loaded int64, live int64, loadedDocs int, budget int64) {
	if live > int64(loadedDocs) {
		return
	}
	if loaded < budget/4 || loaded <= 0 {
		s.v.Store((s.get() + scaleOne) / 2)
		return
	}
	r := min(max(cInUse*scaleOne/loaded, scaleOne), maxScale)
	s.v.Store((s.get() + r) / 2)
}
