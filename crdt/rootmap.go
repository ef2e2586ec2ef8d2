package crdt

import "github.com/automerge/automerge-go"

// rootValues reads the map under key at the root of doc, by key: nil when
// key is absent, a *RuleError of rule "schema" naming what when it holds
// anything but a map.
func rootValues(doc *automerge.Doc, key, what string) (map[string]*automerge.Value, error) {
	v, err := doc.Path(key).Get()
	if err != nil || v.IsVoid() {
		return nil, err
	}
	if v.Kind() != automerge.KindMap {
		return nil, schemaErr("%s must be a map", what)
	}
	return v.Map().Values()
}
