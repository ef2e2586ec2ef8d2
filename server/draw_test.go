package server_test

import (
	"github.com/circles-coop/circles/crdt"
)

func countKind(entries []crdt.AuditEntry, kind string) int {
	n := 0
	for _, e := range entries {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
