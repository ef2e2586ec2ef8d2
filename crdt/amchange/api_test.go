package amchange_test

import (
	"math"
	"testing"

	"github.com/automerge/automerge-go"
	"github.com/circles-coop/circles/crdt/amchange"
)

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  interface{ String() string }
		want string
	}{
		{"root", amchange.OpID{}, "_root"},
		{"op id", id(7, actorA), "7@" + actorA},
		{"put", amchange.Put, "put"},
		{"mark", amchange.Mark, "mark"},
		{"unknown action", amchange.Action(42), "unknown(42)"},
		{"kind", amchange.Timestamp, "timestamp"},
		{"bad kind", amchange.ValueKind(99), "ValueKind(99)"},
		{"null", null, "null"},
		{"bool", boolean(true), "bool true"},
		{"uint", u64(math.MaxUint64), "uint 18446744073709551615"},
		{"int", i64(-3), "int -3"},
		{"counter", amchange.Value{Kind: amchange.Counter, Int: 5}, "counter 5"},
		{"float", f64(0.5), "float 0.5"},
		{"str", str("a\"b"), `str "a\"b"`},
		{"bytes", amchange.Value{Kind: amchange.Bytes, Bytes: []byte{0xca, 0xfe}}, "bytes cafe"},
		{"unknown value", amchange.Value{Kind: amchange.Unknown, TypeCode: 11, Bytes: []byte{1}}, "unknown(11) 01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.got.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOpHelpers(t *testing.T) {
	doc := MustDoc(t, actorA)
	l := automerge.NewList()
	Must(t, doc.RootMap().Set("l", l))
	Must(t, l.Append("a", "b"))
	MustCommit(t, doc, "")
	c, err := amchange.Decode(MustChanges(t, doc)[0].Save())
	Must(t, err)
	if got, want := c.MaxOp(), uint64(3); got != want {
		t.Errorf("MaxOp() = %d, want %d", got, want)
	}
	for i, want := range []struct{ atHead, makes bool }{{false, true}, {true, false}, {false, false}} {
		op := &c.Ops[i]
		if got := op.AtHead(); got != want.atHead {
			t.Errorf("Ops[%d].AtHead() = %t, want %t", i, got, want.atHead)
		}
		if got := op.Action.MakesObject(); got != want.makes {
			t.Errorf("Ops[%d].Action.MakesObject() = %t, want %t", i, got, want.makes)
		}
	}
}
