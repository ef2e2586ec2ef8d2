package server

// GoLimit is the soft memory limit (runtime/debug.SetMemoryLimit) for a
// server with these settings, and whether to set one. The Go heap of a
// circle server is mostly short-lived (request bodies, decoded sync
// messages, JetStream's block buffers), and by default the runtime lets
// it grow to twice what is live before collecting; under a burst of first
// syncs that headroom is most of the peak. The default limit, twice the
// memory budget of loaded documents (64 MiB for the default budget),
// makes the runtime collect sooner near it, and return freed pages to
// the system. It is soft: a server whose live heap is larger keeps
// working, collecting more often. GOMEMLIMIT in the environment, which
// the runtime has already applied, wins over the setting.
func GoLimit(s Settings, getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" || s.GoMemoryLimit < 0 {
		return 0, false
	}
	if s.GoMemoryLimit > 0 {
		return s.GoMemoryLimit, true
	}
	budget := s.MemoryBudget
	if budget <= 0 {
		budget = DefaultConfig().MemoryBudget
	}
	return 2 * budget, true
}
