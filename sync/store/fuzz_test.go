package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/circles-coop/circles/sync/store"
)

// FuzzKVKey checks that any key is either refused with ErrBadKey or stored,
// read back and listed under exactly its own name.
func FuzzKVKey(f *testing.F) {
	for _, seed := range []string{
		"plain", "dev.doc", "=", "=cGxhaW4", "a..b", ".x", "x.", "*", ">", "a b", "ü", "\x00", "a/b", "-_",
	} {
		f.Add(seed)
	}
	s, _ := MustNewStore(f)
	kv := s.Meta()
	f.Fuzz(func(t *testing.T, key string) {
		// A deadline per input: one for the whole run would end a long
		// fuzzing run after its first 30 seconds.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := kv.Put(ctx, key, []byte(key))
		if len(key) == 0 || len(key) > store.MaxKeyLen {
			if !errors.Is(err, store.ErrBadKey) {
				t.Fatalf("Put(%q) error = %v, want ErrBadKey", key, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Put(%q) error = %v", key, err)
		}
		defer kv.Delete(ctx, key)
		val, _, err := kv.Get(ctx, key)
		if err != nil || string(val) != key {
			t.Fatalf("Get(%q) = %q, %v; want the key itself", key, val, err)
		}
		keys, err := kv.Keys(ctx)
		if err != nil {
			t.Fatalf("Keys() error = %v", err)
		}
		if !slices.Equal(keys, []string{key}) {
			t.Fatalf("Keys() = %q, want [%q]", keys, key)
		}
	})
}
