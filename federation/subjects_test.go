package federation_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/circles-coop/circles/federation"
)

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "F1", "circle_9-x", strings.Repeat("z", federation.MaxIDLen)} {
		if err := federation.CheckID("circle id", id); err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", "a.b", "*", ">", "a b", "a\tb", "é", "a/b", "$SYS", strings.Repeat("z", federation.MaxIDLen+1)} {
		if err := federation.CheckID("circle id", id); !errors.Is(err, federation.ErrBadID) {
			t.Errorf("CheckID(%q) = %v, want ErrBadID", id, err)
		}
	}
}

func TestUserPermissions(t *testing.T) {
	p := federation.UserPermissions("F", "X")
	if !slices.Equal(p.Publish, []string{"fed.F.c.X.>"}) || !slices.Equal(p.Subscribe, []string{"fed.F.>"}) {
		t.Fatalf("UserPermissions(F, X) = %+v", p)
	}
	if got := federation.CircleSubject("F", "X", "profile", "v1"); got != "fed.F.c.X.profile.v1" {
		t.Fatalf("CircleSubject = %q", got)
	}
	if got := federation.SubjectCircle("F", "fed.F.c.X.profile"); got != "X" {
		t.Fatalf("SubjectCircle = %q, want X", got)
	}
	if got := federation.SubjectCircle("F", "fed.G.c.X.profile"); got != "" {
		t.Fatalf("SubjectCircle of another federation = %q, want empty", got)
	}
	for _, bad := range [][]string{{"F", "a.b"}, {"F.>", "X"}, {"*", "X"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("UserPermissions(%q, %q) did not panic", bad[0], bad[1])
				}
			}()
			federation.UserPermissions(bad[0], bad[1])
		}()
	}
}
