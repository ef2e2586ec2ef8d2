package amchange_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt/amchange"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the seed corpora in testdata/fuzz")

// seedChanges returns small real changes of every kind, named, for the
// fuzzer to start from.
func seedChanges(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	add := func(name string, doc *automerge.Doc) {
		for i, ch := range MustChanges(tb, doc) {
			out[name+"-"+strconv.Itoa(i)] = ch.Save()
		}
	}

	doc := MustDoc(tb, actorA)
	r := doc.RootMap()
	Must(tb, r.Set("s", "hello"))
	Must(tb, r.Set("i", int64(-300)))
	Must(tb, r.Set("u", uint64(1<<40)))
	Must(tb, r.Set("f", 0.25))
	Must(tb, r.Set("b", true))
	Must(tb, r.Set("n", nil))
	Must(tb, r.Set("bytes", []byte{1, 2}))
	c := automerge.NewCounter(1)
	Must(tb, r.Set("c", c))
	MustCommit(tb, doc, "scalars")
	Must(tb, c.Inc(2))
	Must(tb, r.Delete("s"))
	MustCommit(tb, doc, "")
	add("map", doc)

	doc = MustDoc(tb, actorA)
	l := automerge.NewList()
	Must(tb, doc.RootMap().Set("l", l))
	Must(tb, l.Append("a", int64(2), 3.5))
	txt := automerge.NewText("hello")
	Must(tb, doc.RootMap().Set("t", txt))
	MustCommit(tb, doc, "")
	other, err := doc.Fork()
	Must(tb, err)
	Must(tb, other.SetActorID(actorB))
	ol, err := other.RootMap().Get("l")
	Must(tb, err)
	Must(tb, ol.List().Set(1, "two"))
	Must(tb, ol.List().Delete(0))
	ot, err := other.RootMap().Get("t")
	Must(tb, err)
	Must(tb, ot.Text().Splice(1, 3, "ipp"))
	MustCommit(tb, other, "b")
	add("seq", other)

	big := MustDoc(tb, actorA)
	Must(tb, big.RootMap().Set("t", automerge.NewText(string(make([]byte, 300)))))
	MustCommit(tb, big, "")
	out["compressed-0"] = compressChunk(tb, MustChanges(tb, big)[0].Save())

	for _, tc := range craftCases(tb) {
		if tc.name == "mark begin and end" {
			out["marks-0"] = tc.in
		}
	}
	return out
}

// seedBodies returns the bodies of the seed changes, uncompressed.
func seedBodies(tb testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for name, b := range seedChanges(tb) {
		body, ok := uncompressedBody(b)
		if !ok {
			tb.Fatalf("seed %s has no body", name)
		}
		out[name] = body
	}
	return out
}

// TestSeedCorpus keeps testdata/fuzz in step with seedChanges: with
// -update it rewrites the seed files, otherwise it checks they exist.
func TestSeedCorpus(t *testing.T) {
	for target, seeds := range map[string]map[string][]byte{
		"FuzzDecode":     seedChanges(t),
		"FuzzDecodeBody": seedBodies(t),
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			Must(t, os.MkdirAll(dir, 0o755))
			for name, b := range seeds {
				data := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
				Must(t, os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(data), 0o644))
			}
		}
		for name := range seeds {
			if _, err := os.Stat(filepath.Join(dir, "seed-"+name)); err != nil {
				t.Errorf("seed corpus file missing (run go test -run TestSeedCorpus -update): %v", err)
			}
		}
	}
}

// fuzzDecoder has caps low enough to keep each fuzz run fast.
var fuzzDecoder = amchange.Decoder{MaxSize: 1 << 20, MaxOps: 10_000, MaxPreds: 20_000}

// checkDecode decodes b with and without the canonical-form check and
// checks the results: package errors, or changes that hold together
// (checksum and hash recomputed from the chunk, op ids, actor references,
// caps), that decode the same way twice, and that the canonical encoder
// turns into a canonical change that decodes to the same thing.
func checkDecode(t *testing.T, b []byte) {
	strict := fuzzDecoder
	loose := fuzzDecoder
	loose.AllowNonCanonical = true

	c, err := loose.Decode(b)
	if err != nil {
		checkErr(t, err)
		if _, err := strict.Decode(b); err == nil {
			t.Fatalf("strict Decode() succeeds where lenient Decode() fails")
		}
		return
	}
	checkInvariants(t, b, c, &loose)
	again, err := loose.Decode(b)
	if err != nil {
		t.Fatalf("second Decode() = %v, first succeeded", err)
	}
	if diff := cmp.Diff(c, again, equateNaNs); diff != "" {
		t.Fatalf("second Decode() differs (-first +second):\n%s", diff)
	}

	canon, err := strict.Decode(b)
	if err == nil {
		if diff := cmp.Diff(c, canon, equateNaNs); diff != "" {
			t.Fatalf("strict and lenient Decode() differ (-lenient +strict):\n%s", diff)
		}
	} else if !errors.Is(err, amchange.ErrNotCanonical) {
		t.Fatalf("strict Decode() = %v, want success or ErrNotCanonical", err)
	}

	// Re-encoding gives the same change, canonical whenever the change is
	// in automerge's normal form; the hash differs when the bytes do.
	re := seal(amchange.EncodeBody(c))
	c2, err := loose.Decode(re)
	if err != nil {
		t.Fatalf("Decode(re-encoded change) = %v", err)
	}
	c2.Hash = c.Hash
	if diff := cmp.Diff(c, c2, equateNaNs); diff != "" {
		t.Fatalf("re-encoded change differs (-original +re-encoded):\n%s", diff)
	}
	if canon != nil && !bytes.Equal(re, seal(mustBody(t, b))) {
		t.Fatalf("canonical change re-encodes to other bytes")
	}
	if _, err := strict.Decode(re); err != nil && !errors.Is(err, amchange.ErrNotCanonical) {
		t.Fatalf("strict Decode(re-encoded change) = %v", err)
	}
}

// equateNaNs lets NaN floats compare equal.
var equateNaNs = cmpopts.EquateNaNs()

// mustBody returns a chunk's uncompressed body.
func mustBody(t *testing.T, b []byte) []byte {
	body, ok := uncompressedBody(b)
	if !ok {
		t.Fatalf("no body in % x", b)
	}
	return body
}

// FuzzDecode feeds arbitrary bytes to Decode, which must never panic and
// must accept only changes that hold together.
func FuzzDecode(f *testing.F) {
	for _, b := range seedChanges(f) {
		f.Add(b)
	}
	f.Fuzz(checkDecode)
}

// FuzzDecodeBody feeds arbitrary change bodies to Decode in chunks with a
// valid checksum, plain and compressed, so that the fuzzer gets past the
// checksum into the parser.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range seedBodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sealed := seal(body)
		checkDecode(t, sealed)
		checkDecode(t, compressChunk(t, sealed))
	})
}
