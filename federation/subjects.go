package federation

import (
	"errors"
	"fmt"
	"strings"
)

// MaxIDLen bounds a federation id and a circle id.
const MaxIDLen = 64

// ErrBadID is returned by CheckID for an id that is not a safe NATS
// subject token.
var ErrBadID = errors.New("not a valid id")

// CheckID reports whether id is usable as a federation or circle id: 1 to
// MaxIDLen characters of A-Z, a-z, 0-9, '-' and '_'. Such an id is one
// NATS subject token and can never widen a subject: no '.', '*', '>' or
// space. what names the id in the error ("federation id", "circle id").
func CheckID(what, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%s %q: %w: want 1 to %d characters of A-Z a-z 0-9 - _", what, clip(id), ErrBadID, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%s %q: %w: want 1 to %d characters of A-Z a-z 0-9 - _", what, clip(id), ErrBadID, MaxIDLen)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > MaxIDLen {
		return s[:MaxIDLen] + "…"
	}
	return s
}

// FederationWildcard is every subject of federation fed, "fed.<fed>.>":
// what every member circle may subscribe to. It panics on an id CheckID
// refuses (ids are checked where they enter).
func FederationWildcard(fed string) string {
	mustID("federation id", fed)
	return "fed." + fed + ".>"
}

// CircleWildcard is every subject circle may publish on in federation fed,
// "fed.<fed>.c.<circle>.>".
func CircleWildcard(fed, circle string) string {
	mustID("federation id", fed)
	mustID("circle id", circle)
	return "fed." + fed + ".c." + circle + ".>"
}

// CircleSubject is the subject "fed.<fed>.c.<circle>.<suffix...>" on
// which circle publishes in federation fed. The suffix tokens must be
// non-empty and free of '.', '*', '>' and white space; at least one is
// required (a bare "fed.F.c.X" is outside the circle's permission).
func CircleSubject(fed, circle string, suffix ...string) string {
	mustID("federation id", fed)
	mustID("circle id", circle)
	if len(suffix) == 0 {
		panic("federation: CircleSubject needs at least one suffix token")
	}
	for _, s := range suffix {
		if s == "" || strings.ContainsAny(s, ".*> \t\r\n") {
			panic(fmt.Sprintf("federation: subject token %q is not a plain token", s))
		}
	}
	return "fed." + fed + ".c." + circle + "." + strings.Join(suffix, ".")
}

// SubjectCircle returns the circle that published on subject in
// federation fed ("fed.<fed>.c.<circle>...."), or "" if subject is not a
// circle's subject of fed.
func SubjectCircle(fed, subject string) string {
	prefix := "fed." + fed + ".c."
	if !strings.HasPrefix(subject, prefix) {
		return ""
	}
	rest := subject[len(prefix):]
	circle, _, _ := strings.Cut(rest, ".")
	if CheckID("circle id", circle) != nil {
		return ""
	}
	return circle
}

func mustID(what, id string) {
	if err := CheckID(what, id); err != nil {
		panic("federation: " + err.Error())
	}
}
