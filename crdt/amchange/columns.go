package amchange

import "fmt"

// Column types: the low three bits of a column specification.
const (
	colGroup    = 0 // number of entries of a grouped (list) column, uLEB RLE
	colActor    = 1 // actor index, uLEB RLE
	colInteger  = 2 // uLEB RLE
	colDelta    = 3 // delta-encoded signed integers
	colBoolean  = 4 // alternating run lengths
	colString   = 5 // string RLE
	colValueMD  = 6 // value metadata: length<<4 | type code, uLEB RLE
	colValueRaw = 7 // the raw bytes the value metadata describes
)

// colDeflate is the bit of a column specification that marks its data as
// DEFLATE-compressed.
const colDeflate = 8

// The columns of a change's operations, by specification: column id << 4
// | column type.
const (
	specObjActor  uint32 = 0<<4 | colActor
	specObjCtr    uint32 = 0<<4 | colInteger
	specKeyActor  uint32 = 1<<4 | colActor
	specKeyCtr    uint32 = 1<<4 | colDelta
	specKeyStr    uint32 = 1<<4 | colString
	specInsert    uint32 = 3<<4 | colBoolean
	specAction    uint32 = 4<<4 | colInteger
	specValueMeta uint32 = 5<<4 | colValueMD
	specValueRaw  uint32 = 5<<4 | colValueRaw
	specPredGroup uint32 = 7<<4 | colGroup
	specPredActor uint32 = 7<<4 | colActor
	specPredCtr   uint32 = 7<<4 | colDelta
	specExpand    uint32 = 9<<4 | colBoolean
	specMarkName  uint32 = 10<<4 | colString
)

// The operation columns in the order of their specifications, which is the
// order a change stores them in.
const (
	iObjActor = iota
	iObjCtr
	iKeyActor
	iKeyCtr
	iKeyStr
	iInsert
	iAction
	iValueMeta
	iValueRaw
	iPredGroup
	iPredActor
	iPredCtr
	iExpand
	iMarkName
	numColumns
)

// specs maps a column index to its specification.
var specs = [numColumns]uint32{
	specObjActor, specObjCtr, specKeyActor, specKeyCtr, specKeyStr,
	specInsert, specAction, specValueMeta, specValueRaw,
	specPredGroup, specPredActor, specPredCtr, specExpand, specMarkName,
}

// columnIndex returns the index of an operation column's specification, or
// -1 if it is not one.
func columnIndex(s uint32) int {
	for i, k := range specs {
		if k == s {
			return i
		}
	}
	return -1
}

// knownID reports whether id is the id of an operation column.
func knownID(id uint32) bool {
	switch id {
	case 0, 1, 3, 4, 5, 7, 9, 10:
		return true
	}
	return false
}

// opColumns holds the data of each operation column and whether the change
// has the column at all.
type opColumns struct {
	data    [numColumns][]byte
	present [numColumns]bool
}

// layColumns checks the column metadata of a change against the layout
// automerge-rs accepts and sets each known column's data in cols. metas holds
// (specification, length) pairs in order; data is the column data they
// describe, back to back, and is at least as long as their sum.
//
// It rejects what automerge-rs rejects (columns out of order, compressed
// columns, a raw value column without its metadata column, a pred group
// without both of its member columns) and, being stricter, repeated columns,
// columns of a known id with an unexpected type, pred members without their
// group, and only one of the two object columns. Columns of unknown ids are
// skipped, as automerge-rs does.
func layColumns(cols *opColumns, metas [][2]uint64, data []byte) error {
	var (
		off       uint64
		prev      uint32
		prevValMD = -1 // id of the preceding column if it holds value metadata
	)
	for i, m := range metas {
		s, n := uint32(m[0]), m[1]
		col := data[off : off+n]
		off += n
		if s&colDeflate != 0 {
			return malformed("column %d (spec %#x) is DEFLATE-compressed; automerge does not accept compressed columns in a change", i, s)
		}
		if i > 0 && s <= prev {
			return malformed("column %d (spec %#x) out of order or repeated after spec %#x", i, s, prev)
		}
		prev = s
		id, typ := s>>4, s&7
		valMD := prevValMD
		prevValMD = -1
		if typ == colValueMD {
			prevValMD = int(id)
		}
		if !knownID(id) {
			if typ == colValueRaw && valMD != int(id) {
				return malformed("column %d (spec %#x) holds raw values without a metadata column", i, s)
			}
			continue
		}
		ci := columnIndex(s)
		if ci < 0 {
			return malformed("column %d (spec %#x) has an unexpected type for column id %d", i, s, id)
		}
		cols.data[ci], cols.present[ci] = col, true
	}
	p := &cols.present
	if p[iValueRaw] && !p[iValueMeta] {
		return malformed("raw value column without a value metadata column")
	}
	if p[iPredActor] != p[iPredCtr] || (p[iPredActor] && !p[iPredGroup]) {
		return malformed("pred columns incomplete (count %t, actor %t, counter %t)", p[iPredGroup], p[iPredActor], p[iPredCtr])
	}
	if (len(cols.data[iObjActor]) == 0) != (len(cols.data[iObjCtr]) == 0) {
		return malformed("object columns incomplete (actor %d bytes, counter %d bytes)", len(cols.data[iObjActor]), len(cols.data[iObjCtr]))
	}
	return nil
}

// columnName names a known column for error messages.
func columnName(s uint32) string {
	switch s {
	case specObjActor:
		return "obj actor"
	case specObjCtr:
		return "obj counter"
	case specKeyActor:
		return "key actor"
	case specKeyCtr:
		return "key counter"
	case specKeyStr:
		return "key string"
	case specInsert:
		return "insert"
	case specAction:
		return "action"
	case specValueMeta:
		return "value metadata"
	case specValueRaw:
		return "value"
	case specPredGroup:
		return "pred count"
	case specPredActor:
		return "pred actor"
	case specPredCtr:
		return "pred counter"
	case specExpand:
		return "expand"
	case specMarkName:
		return "mark name"
	}
	return fmt.Sprintf("column %#x", s)
}
