package crdt

import (
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/circles-coop/circles/crdt/amchange"
)

// Names of the write rules (DESIGN.md §4) reported in a RuleError.
const (
	RuleActor      = "actor"      // rule 1: the change's actor is not the device's
	RulePermission = "permission" // rule 2: the member may not write this document
	// RuleSchema and RuleImmutable (errors.go) cover rule 3.
)

// Limits on what one batch of device changes may do.
const (
	// MaxOpsPerBatch bounds the operations of the changes of one sync
	// message; a phone that was offline for months may send many entries,
	// but not millions of operations.
	MaxOpsPerBatch = 200_000
	// MaxNewPerBatch bounds the new entries, credits, proposals, votes and
	// reset statements of one message.
	MaxNewPerBatch = 20_000
	// MaxValueLen bounds, in characters (bytes for byte values), any one
	// value a device writes into an append-only document, and any text
	// object it makes there: the longest field such a document holds is a
	// proposal's body (MaxBodyLen). The readers check each field's own
	// bound once the batch is applied; this bound stops a batch before it
	// is applied.
	MaxValueLen = MaxBodyLen
)

// Containers returns, for a member-written kind, the root keys of its
// append-only containers and whether each holds objects (true) or scalar
// strings (false). Devices may only add new keys to these containers.
func Containers(k Kind) map[string]bool {
	switch k {
	case KindLedger:
		return map[string]bool{"entries": true, "credits": true}
	case KindBallots:
		return map[string]bool{"proposals": true, "votes": true, "resets": false}
	}
	return nil
}

// Added is one key a batch of changes added to an append-only container.
type Added struct {
	Container string // "entries", "credits", "proposals", "votes", "resets"
	Key       string
}

// CheckAppendOnly checks the operations of a batch of device changes
// against an append-only document (a ledger segment or a ballots
// document). roots maps each container name to the object id the server
// created it with; exists reports whether a key is already present in a
// container. A device may add new keys to the containers, with a new
// object (or, for scalar containers, a string) as value, and may write
// anything inside objects the same batch created. Every other operation —
// on the root, on an object accepted earlier, a delete in a container —
// breaks a rule. It returns the keys the batch adds, in order.
func CheckAppendOnly(kind Kind, roots map[string]amchange.OpID, exists func(container, key string) bool, changes []*amchange.Change) ([]Added, error) {
	containers := Containers(kind)
	if containers == nil {
		return nil, &RuleError{Rule: RulePermission, Message: fmt.Sprintf("devices may not write %s documents", kind)}
	}
	byObj := make(map[amchange.OpID]string, len(roots))
	for name, id := range roots {
		byObj[id] = name
	}
	created := make(ObjectKinds) // objects this batch made, and whether each is a sequence
	var seen seenOps
	textLen := make(map[amchange.OpID]*int) // characters inserted into each sequence this batch made
	addedKeys := make(map[Added]bool)
	var added []Added
	ops := 0
	// Operations mostly come in runs on one object (the characters of a
	// text): what is known of the object of the previous operation is
	// kept, to look up maps once per run.
	var (
		lastObj          amchange.OpID
		lastSeq, lastNew bool
		lastLen          *int
		lastValid        bool
	)
	for _, ch := range changes {
		ops += len(ch.Ops)
		if ops > MaxOpsPerBatch {
			return nil, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("more than %d operations in one message; sync in smaller steps", MaxOpsPerBatch)}
		}
		seen.cur = ch
		for i := range ch.Ops {
			op := &ch.Ops[i]
			seen.curN = uint64(i)
			if !lastValid || op.Obj != lastObj {
				lastObj, lastValid, lastLen = op.Obj, true, nil
				lastSeq, lastNew = created[op.Obj]
			}
			isSeq, isNew := lastSeq, lastNew
			n, err := valueLen(kind, op)
			if err != nil {
				return nil, err
			}
			if isNew && isSeq && op.Insert {
				if lastLen == nil {
					if lastLen = textLen[op.Obj]; lastLen == nil {
						lastLen = new(int)
						textLen[op.Obj] = lastLen
					}
				}
				if *lastLen += max(1, n); *lastLen > MaxValueLen {
					return nil, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("a text in a %s document is longer than %d characters", kind, MaxValueLen)}
				}
			}
			switch {
			case isNew:
				// Inside an object this batch created: its shape is checked
				// after applying, when the whole value can be read.
				if err := checkInsideNew(kind, op, isSeq, &seen); err != nil {
					return nil, err
				}
			case op.Obj.IsRoot():
				return nil, &RuleError{Rule: RuleImmutable, Message: fmt.Sprintf("the root of a %s document is written by the server only (key %q)", kind, op.Key)}
			case byObj[op.Obj] != "":
				name := byObj[op.Obj]
				a, err := checkContainerOp(kind, name, containers[name], op, exists)
				if err != nil {
					return nil, err
				}
				if addedKeys[a] {
					return nil, &RuleError{Rule: RuleImmutable, Message: fmt.Sprintf("%s %q is written twice in one message", name, a.Key)}
				}
				addedKeys[a] = true
				added = append(added, a)
				if len(added) > MaxNewPerBatch {
					return nil, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("more than %d new items in one message; sync in smaller steps", MaxNewPerBatch)}
				}
			default:
				return nil, &RuleError{Rule: RuleImmutable, Message: "changes a value that was already accepted; write a new entry that voids it instead"}
			}
			if op.Action.MakesObject() {
				created.learn(op)
				lastValid = false
			}
		}
		seen.done(ch)
	}
	return added, nil
}

// seenOps is the set of operations of a batch checked so far: every
// operation of the changes done, and the first curN of cur. An
// operation's id is its change's StartOp plus its index, by the change's
// actor, so the set is kept as ranges of counters per actor — ascending
// and apart, as one author's changes are, and searched by bisection. A
// batch whose changes are not in that order falls back to a set of ids
// (the batch's operations are bounded by MaxOpsPerBatch).
type seenOps struct {
	ranges map[string][][2]uint64 // actor → [first, last] counters, ascending, apart
	ids    map[amchange.OpID]bool // when not (nil until then)
	cur    *amchange.Change
	curN   uint64
}

func (s *seenOps) done(ch *amchange.Change) {
	if len(ch.Ops) == 0 {
		return
	}
	first, last := ch.StartOp, ch.StartOp+uint64(len(ch.Ops))-1
	if s.ids == nil {
		if s.ranges == nil {
			s.ranges = make(map[string][][2]uint64)
		}
		rs := s.ranges[ch.Actor]
		if last >= first && (len(rs) == 0 || first > rs[len(rs)-1][1]) {
			s.ranges[ch.Actor] = append(rs, [2]uint64{first, last})
			return
		}
		s.ids = make(map[amchange.OpID]bool)
		for actor, rs := range s.ranges {
			for _, r := range rs {
				for c := r[0]; ; c++ {
					s.ids[amchange.OpID{Counter: c, Actor: actor}] = true
					if c == r[1] {
						break
					}
				}
			}
		}
		s.ranges = nil
	}
	for i := range ch.Ops {
		s.ids[ch.Ops[i].ID] = true
	}
}

func (s *seenOps) has(id amchange.OpID) bool {
	if c := s.cur; c != nil && id.Actor == c.Actor && id.Counter >= c.StartOp && id.Counter-c.StartOp < s.curN {
		return true
	}
	if s.ids != nil {
		return s.ids[id]
	}
	rs := s.ranges[id.Actor]
	i := sort.Search(len(rs), func(i int) bool { return rs[i][1] >= id.Counter })
	return i < len(rs) && rs[i][0] <= id.Counter
}

// valueLen returns the characters of the string (bytes of the byte
// value) an operation puts, refusing one over MaxValueLen.
func valueLen(kind Kind, op *amchange.Op) (int, error) {
	if op.Action != amchange.Put {
		return 0, nil
	}
	n := 0
	switch op.Value.Kind {
	case amchange.Str:
		n = utf8.RuneCountInString(op.Value.Str)
	case amchange.Bytes, amchange.Unknown:
		n = len(op.Value.Bytes)
	}
	if n > MaxValueLen {
		return 0, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("a value in a %s document is longer than %d characters", kind, MaxValueLen)}
	}
	return n, nil
}

// checkInsideNew checks an operation on an object the same batch created.
// Everything it refers to must come from the batch too: automerge applies
// an operation whose predecessor or list element does not exist, but the
// document then no longer loads.
func checkInsideNew(kind Kind, op *amchange.Op, isSeq bool, seen *seenOps) error {
	bad := func(what string) error {
		return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("operation %s in a %s document %s", op.ID, kind, what)}
	}
	if err := checkKeyKind(kind, op, isSeq); err != nil {
		return err
	}
	if op.Action == amchange.Mark || !op.Action.Known() {
		return bad(fmt.Sprintf("is a %s, which is not allowed", op.Action))
	}
	if op.Action == amchange.Delete && len(op.Pred) == 0 {
		return bad("deletes nothing")
	}
	for _, p := range op.Pred {
		if !seen.has(p) {
			return bad("overwrites an operation that is not in the same message")
		}
	}
	if op.ElemKey && !op.Elem.IsRoot() && !seen.has(op.Elem) {
		return bad("refers to a list element that is not in the same message")
	}
	return nil
}

func checkContainerOp(kind Kind, name string, holdsObjects bool, op *amchange.Op, exists func(container, key string) bool) (Added, error) {
	a := Added{Container: name, Key: op.Key}
	switch {
	case op.ElemKey || op.Key == "":
		return a, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("%s of a %s document is a map keyed by id", name, kind)}
	case op.Action == amchange.Delete:
		return a, &RuleError{Rule: RuleImmutable, Message: fmt.Sprintf("%s %q may not be deleted; write a new item instead", name, op.Key)}
	case len(op.Key) > 64:
		return a, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("%s key is longer than 64 characters", name)}
	case len(op.Pred) > 0 || exists(name, op.Key):
		return a, &RuleError{Rule: RuleImmutable, Message: fmt.Sprintf("%s %q already exists and may not be rewritten", name, op.Key)}
	case holdsObjects && op.Action != amchange.MakeMap:
		return a, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("%s %q must be a map", name, op.Key)}
	case !holdsObjects && !(op.Action == amchange.Put && op.Value.Kind == amchange.Str) && op.Action != amchange.MakeText:
		return a, &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("%s %q must be a string", name, op.Key)}
	}
	return a, nil
}

// ObjectKinds records the objects of a document: for each object id,
// whether it is a sequence (list or text) rather than a map. The root map
// is implied.
type ObjectKinds map[amchange.OpID]bool

func (k ObjectKinds) learn(op *amchange.Op) {
	switch op.Action {
	case amchange.MakeMap, amchange.MakeTable:
		k[op.ID] = false
	case amchange.MakeList, amchange.MakeText:
		k[op.ID] = true
	}
}

// Learn records the objects a change creates.
func (k ObjectKinds) Learn(ch *amchange.Change) {
	for i := range ch.Ops {
		k.learn(&ch.Ops[i])
	}
}

// checkKeyKind refuses an operation that addresses a map by list element
// or a sequence by map key. automerge-rs does not check this when applying
// and aborts the whole process (not a recoverable panic) when it compares
// the two kinds of key later.
func checkKeyKind(kind Kind, op *amchange.Op, isSeq bool) error {
	switch {
	case isSeq && !op.ElemKey:
		return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("operation %s in a %s document uses a map key on a list or text", op.ID, kind)}
	case !isSeq && op.ElemKey:
		return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("operation %s in a %s document uses a list position on a map", op.ID, kind)}
	case op.Insert && !op.ElemKey:
		return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("operation %s in a %s document inserts into a map", op.ID, kind)}
	}
	return nil
}

// CheckFreeForm checks the operations of a batch of changes to a document
// every member edits freely (the charter draft): no operation on the
// root (the server made its objects), every operation on an object that
// exists (known) or that the batch made earlier, addressed with the kind
// of key that object takes. What the edits say is free.
func CheckFreeForm(kind Kind, known ObjectKinds, changes []*amchange.Change) error {
	created := make(ObjectKinds)
	ops := 0
	for _, ch := range changes {
		ops += len(ch.Ops)
		if ops > MaxOpsPerBatch {
			return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("more than %d operations in one message; sync in smaller steps", MaxOpsPerBatch)}
		}
		for i := range ch.Ops {
			op := &ch.Ops[i]
			if op.Obj.IsRoot() {
				return &RuleError{Rule: RuleImmutable, Message: fmt.Sprintf("the root of the %s document is written by the server only (key %q)", kind, op.Key)}
			}
			isSeq, ok := created[op.Obj]
			if !ok {
				isSeq, ok = known[op.Obj]
			}
			if !ok {
				return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf("operation %s in the %s document acts on an object that does not exist", op.ID, kind)}
			}
			if err := checkKeyKind(kind, op, isSeq); err != nil {
				return err
			}
			created.learn(op)
		}
	}
	return nil
}
