package crdt

import (
	"fmt"
	"unicode/utf8"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt/amchange"
)

// DraftBound is the most characters a charter draft can hold: its text
// and all its principles at their bounds.
const DraftBound = MaxDraftTextLen + MaxPrinciples*MaxPrincipleLen

// CheckCharterDraft checks, at sync, the charter draft after a member's
// change was applied: it must read as ReadCharterDraft reads it, its text
// at most MaxDraftTextLen characters, at most MaxPrinciples principles of
// at most MaxPrincipleLen characters, each a string or text. A change that
// breaks it is refused (the sync layer rolls it back), so the draft stays
// one that charter.ratify can ratify. It returns a *RuleError of rule
// "schema".
func CheckCharterDraft(doc *automerge.Doc) error {
	_, err := ReadCharterDraft(doc)
	return err
}

// DraftTextObject returns the id of the draft's text object, from the
// draft's first change (the server's, made by InitCharterDraft). The
// sync layer reads it once per draft and passes it to CheckDraftChanges.
func DraftTextObject(first *amchange.Change) (amchange.OpID, bool) {
	for _, op := range first.Ops {
		if op.Obj.IsRoot() && !op.ElemKey && op.Key == "text" && op.Action == amchange.MakeText {
			return op.ID, true
		}
	}
	return amchange.OpID{}, false
}

// CheckDraftChanges bounds, before they are applied, what a batch of
// changes to the charter draft doc can add, so that no member can make the
// server apply (and hold in memory) an oversized draft only to refuse it
// afterwards. text is the draft's text object (DraftTextObject). It reads
// the operations only: each put counts the characters of its string (at
// least 1), the deletion or overwrite of an element the same batch
// inserted gives them back, and deleting or overwriting elements that
// existed before may free at most what the draft holds now. A batch that
// would take the text past MaxDraftTextLen, or the whole draft (text and
// principles) past DraftBound, however its deletions fall, is refused with
// a *RuleError of rule "schema". It never refuses a batch whose result is
// within the bounds; CheckCharterDraft, after applying, is the exact check.
func CheckDraftChanges(doc *automerge.Doc, text amchange.OpID, changes []*amchange.Change) error {
	curText, curAll := draftChars(doc)
	type growth struct {
		net        int  // characters put minus those of this batch's elements deleted again
		deletesOld bool // deletes or overwrites something that existed before the batch
	}
	var inText, inAll growth
	own := make(map[amchange.OpID]int) // elements this batch inserted: their characters
	add := func(obj amchange.OpID, n int, old bool) {
		for _, g := range []*growth{&inAll, &inText} {
			if g == &inText && obj != text {
				continue
			}
			g.net += n
			g.deletesOld = g.deletesOld || old
		}
	}
	for _, ch := range changes {
		for i := range ch.Ops {
			op := &ch.Ops[i]
			n := 0
			if op.Action != amchange.Delete {
				n = 1
				if op.Action == amchange.Put && op.Value.Kind == amchange.Str {
					n = max(1, utf8.RuneCountInString(op.Value.Str))
				}
			}
			switch {
			case op.Insert:
				own[op.ID] = n
				add(op.Obj, n, false)
			case op.ElemKey:
				if c, ok := own[op.Elem]; ok { // deletes or overwrites an element of this batch
					own[op.Elem] = n
					add(op.Obj, n-c, false)
				} else {
					add(op.Obj, n, true)
				}
			default: // a map key
				add(op.Obj, n, len(op.Pred) > 0 || op.Action == amchange.Delete)
			}
		}
	}
	lowest := func(g growth, current int) int {
		if g.deletesOld {
			return g.net // it may delete all that exists
		}
		return current + g.net
	}
	if lowest(inText, curText) > MaxDraftTextLen || lowest(inAll, curAll) > DraftBound {
		return &RuleError{Rule: RuleSchema, Message: fmt.Sprintf(
			"the change would take the charter draft past its bounds (text at most %d characters, at most %d principles of at most %d); write less at once or shorten the draft",
			MaxDraftTextLen, MaxPrinciples, MaxPrincipleLen)}
	}
	return nil
}

// draftChars counts the characters of the draft's text, and of its text
// and principles together; a draft that does not read counts as full.
func draftChars(doc *automerge.Doc) (text, all int) {
	d, err := ReadCharterDraft(doc)
	if err != nil {
		return MaxDraftTextLen, DraftBound
	}
	text = utf8.RuneCountInString(d.Text)
	all = text
	for _, p := range d.Principles {
		all += utf8.RuneCountInString(p)
	}
	return text, all
}
