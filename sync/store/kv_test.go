package store_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/circles-coop/circles/sync/store"
)

func TestKVSemantics(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	buckets := []struct {
		name string
		kv   store.KV
	}{
		{"SyncStates", s.SyncStates()},
		{"Meta", s.Meta()},
		{"Invites", s.Invites()},
	}
	for _, b := range buckets {
		t.Run(b.name, func(t *testing.T) {
			kv := b.kv
			rev1, err := kv.Create(ctx, "k", []byte("v1"))
			if err != nil {
				t.Fatalf("Create(k) error = %v", err)
			}
			if _, err := kv.Create(ctx, "k", []byte("again")); !errors.Is(err, store.ErrExists) {
				t.Errorf("second Create(k) error = %v, want ErrExists", err)
			}
			rev2, err := kv.Update(ctx, "k", []byte("v2"), rev1)
			if err != nil {
				t.Fatalf("Update(k, rev %d) error = %v", rev1, err)
			}
			if rev2 <= rev1 {
				t.Errorf("Update revision = %d, want > %d", rev2, rev1)
			}
			if _, err := kv.Update(ctx, "k", []byte("stale"), rev1); !errors.Is(err, store.ErrConflict) {
				t.Errorf("Update(k, stale rev %d) error = %v, want ErrConflict", rev1, err)
			}
			if _, err := kv.Update(ctx, "never", []byte("x"), 1); !errors.Is(err, store.ErrConflict) {
				t.Errorf("Update(never, rev 1) error = %v, want ErrConflict", err)
			}
			val, rev, err := kv.Get(ctx, "k")
			if err != nil || string(val) != "v2" || rev != rev2 {
				t.Errorf("Get(k) = %q, %d, %v; want \"v2\", %d, nil", val, rev, err, rev2)
			}
			rev3, err := kv.Put(ctx, "k", []byte("v3"))
			if err != nil || rev3 <= rev2 {
				t.Errorf("Put(k) = %d, %v; want revision > %d", rev3, err, rev2)
			}
			if err := kv.Delete(ctx, "k"); err != nil {
				t.Fatalf("Delete(k) error = %v", err)
			}
			if _, _, err := kv.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(k) after Delete error = %v, want ErrNotFound", err)
			}
			if err := kv.Delete(ctx, "absent"); err != nil {
				t.Errorf("Delete(absent) error = %v, want nil", err)
			}
			if _, err := kv.Create(ctx, "k", []byte("v4")); err != nil {
				t.Errorf("Create(k) after Delete error = %v, want nil", err)
			}
		})
	}
}

func TestKVKeys(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	kv := s.SyncStates()
	if keys, err := kv.Keys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("Keys() on empty bucket = %v, %v; want [], nil", keys, err)
	}
	// Keys that are fine as they are, and keys that must be encoded.
	keys := []string{
		"plain", "dev1.doc2", "a-b_c", "UPPER.lower.123",
		"=", "==x", "a=b", "with space", "a/b", "a..b", ".lead", "trail.", "*", ">", "a.*.>",
		"ünïcödé", "\x00\xff", "device:7/doc:Xy9", strings.Repeat("k", store.MaxKeyLen),
	}
	for i, k := range keys {
		if _, err := kv.Put(ctx, k, []byte{byte(i)}); err != nil {
			t.Fatalf("Put(%q) error = %v", k, err)
		}
	}
	for i, k := range keys {
		val, _, err := kv.Get(ctx, k)
		if err != nil || len(val) != 1 || val[0] != byte(i) {
			t.Errorf("Get(%q) = %v, %v; want [%d], nil", k, val, err, i)
		}
	}
	if err := kv.Delete(ctx, "a=b"); err != nil {
		t.Fatalf("Delete(a=b) error = %v", err)
	}
	got, err := kv.Keys(ctx)
	if err != nil {
		t.Fatalf("Keys() error = %v", err)
	}
	want := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "a=b" })
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, want %q", got, want)
	}

	bad := []string{"", strings.Repeat("k", store.MaxKeyLen+1)}
	for _, k := range bad {
		if _, err := kv.Put(ctx, k, nil); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Put(%d-byte key) error = %v, want ErrBadKey", len(k), err)
		}
		if _, _, err := kv.Get(ctx, k); !errors.Is(err, store.ErrBadKey) {
			t.Errorf("Get(%d-byte key) error = %v, want ErrBadKey", len(k), err)
		}
	}
}

func TestClaimJTI(t *testing.T) {
	s, _ := MustNewStore(t)
	ctx := testCtx(t)
	exp := time.Now().Add(5 * time.Minute)
	tests := []struct {
		name string
		jti  string
		exp  time.Time
		want error
	}{
		{"first use", "jti-1", exp, nil},
		{"replay", "jti-1", exp, store.ErrReplay},
		{"replay with other exp", "jti-1", exp.Add(-time.Minute), store.ErrReplay},
		{"other jti", "jti-2", exp, nil},
		{"jti not a valid subject", "a.b c/*>", exp, nil},
		{"jti one byte longer", "a.b c/*>x", exp, nil},
		{"replay of odd jti", "a.b c/*>", exp, store.ErrReplay},
		{"empty", "", exp, store.ErrBadKey},
		{"too long", strings.Repeat("j", store.MaxKeyLen+1), exp, store.ErrBadKey},
		{"outlives the window", "jti-3", time.Now().Add(time.Hour), store.ErrJTIExpiry},
		{"refused one was not recorded", "jti-3", exp, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.ClaimJTI(ctx, tt.jti, tt.exp); !errors.Is(err, tt.want) {
				t.Errorf("ClaimJTI(%.20q) error = %v, want %v", tt.jti, err, tt.want)
			}
		})
	}
}

func TestClaimJTIExpires(t *testing.T) {
	n := MustNATS(t, t.TempDir())
	s := MustStore(t, n, store.Options{JTITTL: time.Second})
	ctx := testCtx(t)
	exp := time.Now().Add(500 * time.Millisecond)
	if err := s.ClaimJTI(ctx, "short", exp); err != nil {
		t.Fatalf("ClaimJTI(short) error = %v", err)
	}
	if err := s.ClaimJTI(ctx, "short", exp); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("ClaimJTI(short) again error = %v, want ErrReplay", err)
	}
	// After the TTL the bucket forgets the id (the token expired long ago).
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.ClaimJTI(ctx, "short", time.Now())
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrReplay) || time.Now().After(deadline) {
			t.Fatalf("ClaimJTI(short) after TTL error = %v, want nil within 10s", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestOpenIdempotent(t *testing.T) {
	n := MustNATS(t, t.TempDir())
	s := MustStore(t, n, store.Options{})
	ctx := testCtx(t)
	seqs := MustAppend(t, s, "doc", "a")
	if _, err := s.Invites().Put(ctx, "inv", []byte("x")); err != nil {
		t.Fatalf("Put(inv) error = %v", err)
	}
	// Reopen with a changed option: data stays, the option applies.
	s2 := MustStore(t, n, store.Options{JTITTL: time.Hour})
	got, err := s2.Load(ctx, "doc")
	if err != nil || len(got.Chunks) != 1 || got.Chunks[0].Seq != seqs[0] {
		t.Errorf("Load(doc) after reopen = %+v, %v; want chunk %d", got, err, seqs[0])
	}
	if val, _, err := s2.Invites().Get(ctx, "inv"); err != nil || string(val) != "x" {
		t.Errorf("Invites().Get(inv) after reopen = %q, %v; want \"x\", nil", val, err)
	}
	if err := s2.ClaimJTI(ctx, "j", time.Now().Add(30*time.Minute)); err != nil {
		t.Errorf("ClaimJTI(exp 30m) with JTITTL 1h error = %v, want nil", err)
	}
	if _, err := store.Open(ctx, n.JetStream(), store.Options{Replicas: -1}); err == nil {
		t.Errorf("Open(Replicas -1) error = nil, want an error")
	}
}
