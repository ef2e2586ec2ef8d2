package replica

import (
	"context"

	"github.com/automerge/automerge-go"
)

// BenchWrite writes key=val into the own document, as a small federated
// change (benchmarks measure the path, not the records' checks).
func (r *Replica) BenchWrite(ctx context.Context, key, val string) error {
	return r.write(ctx, "bench", func(d *automerge.Doc) (bool, error) {
		return true, d.RootMap().Set(key, val)
	})
}

// WriteRecord writes rec as it is into the own document's map mapKey: a
// circle writing what the API would have refused.
func (r *Replica) WriteRecord(ctx context.Context, mapKey, id, rec string) error {
	return r.write(ctx, "raw", func(d *automerge.Doc) (bool, error) {
		return true, putMapString(d, mapKey, id, rec)
	})
}
