package replica

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
)

// Subjects follow the permission contract of DESIGN.md §8: circle X of
// federation F publishes only on fed.F.c.X.> and subscribes to fed.F.>.
// (federation/subjects.go will hold the shared helpers; this is the same
// scheme, kept here until the two are unified.)
const (
	// SuffixChanges carries framed automerge changes of the publishing
	// circle's federated document.
	SuffixChanges = "chg"
	// SuffixWant carries a circle's announcement of the heads it holds of
	// every member's document (and of its own), so others send what it
	// lacks.
	SuffixWant = "want"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidID reports whether id can be a federation or circle id: it must be
// a single NATS subject token (no dots, spaces or wildcards).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// CircleSubject is the subject circle publishes suffix on in federation.
func CircleSubject(federation, circle, suffix string) string {
	return fmt.Sprintf("fed.%s.c.%s.%s", federation, circle, suffix)
}

// FederationWildcard is everything a member circle may subscribe to.
func FederationWildcard(federation string) string { return "fed." + federation + ".>" }

// parseSubject splits fed.F.c.X.suffix; ok is false for any other shape.
func parseSubject(subject string) (federation, circle, suffix string, ok bool) {
	var parts [5]string
	n := 0
	start := 0
	for i := 0; i <= len(subject); i++ {
		if i == len(subject) || subject[i] == '.' {
			if n == len(parts) {
				return "", "", "", false
			}
			parts[n] = subject[start:i]
			n++
			start = i + 1
		}
	}
	if n != 5 || parts[0] != "fed" || parts[2] != "c" {
		return "", "", "", false
	}
	return parts[1], parts[3], parts[4], true
}

// ActorFor is the automerge actor id with which circle writes its
// federated document in federation: derived from both ids, so every
// member knows, without asking, the only actor whose changes it accepts
// on that circle's subjects. The hub's permissions keep anyone else off
// those subjects; the actor check refuses a circle that writes, on its
// own subjects, changes made to look like another's, or a change that
// arrives on the wrong subject.
func ActorFor(federation, circle string) string {
	sum := sha256.Sum256([]byte("circles/federation/actor/v1\x00" + federation + "\x00" + circle))
	return hex.EncodeToString(sum[:16])
}
