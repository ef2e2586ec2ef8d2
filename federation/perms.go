package federation

// Permissions are the subjects a member circle's hub user may publish and
// subscribe to.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// UserPermissions is THE permission template of a member circle (DESIGN.md
// §8), the one place it is written: circle may publish only on its own
// subjects, fed.<fed>.c.<circle>.>, and subscribe only to fed.<fed>.>.
// Nothing else: no reply or inbox subjects (the federation's catch-up
// works by broadcasts on each circle's own subjects) and no JetStream
// API. The hub puts these into the circle's user JWT, which may connect
// only as a leaf node; the hub enforces them, so a circle can never
// publish as another.
func UserPermissions(fed, circle string) Permissions {
	return Permissions{
		Publish:   []string{CircleWildcard(fed, circle)},
		Subscribe: []string{FederationWildcard(fed)},
	}
}
