package client

import (
	"fmt"

	"github.com/automerge/automerge-go"

	"github.com/circles-coop/circles/crdt"
)

// charterDraftKey is the charter draft's name in the circle's documents.
const charterDraftKey = string(crdt.KindCharterDraft)

// CharterDraft reads this device's copy of the charter draft, with no
// network: what the members have written so far, as last synced, plus
// this device's own edits not yet sent. ErrNotSynced before the draft was
// fetched.
func (d *Device) CharterDraft() (crdt.CharterDraftText, error) {
	info := d.Info()
	if info.Circle == nil || info.Circle.Docs[charterDraftKey] == "" {
		return crdt.CharterDraftText{}, fmt.Errorf("charter draft: %w", ErrNotSynced)
	}
	doc, found, err := d.store.loadDoc(info.Circle.Docs[charterDraftKey])
	if err != nil {
		return crdt.CharterDraftText{}, err
	}
	if !found {
		return crdt.CharterDraftText{}, fmt.Errorf("charter draft: %w", ErrNotSynced)
	}
	draft, err := crdt.ReadCharterDraft(doc)
	if err != nil {
		return crdt.CharterDraftText{}, fmt.Errorf("charter draft: %w", err)
	}
	return draft, nil
}

// EditCharterDraft makes the text of this device's copy of the charter
// draft say text, and commits that as this device's change; it needs no
// network: the next Sync delivers it, and any active member may write the
// draft. Only the part that differs is replaced (crdt.SetDraftText), so
// members editing other parts at the same time keep their edits. It
// reports false, and writes nothing, when the draft already says text. A
// text over crdt.MaxDraftTextLen characters is a *crdt.RuleError;
// ErrNotSynced before the draft was fetched.
func (d *Device) EditCharterDraft(text string) (bool, error) {
	return d.writeDoc(charterDraftKey, "edit the charter draft", func(doc *automerge.Doc) (bool, error) {
		return crdt.SetDraftText(doc, text)
	})
}
