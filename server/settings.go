package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	mobileapi "github.com/circles-coop/circles/mobile-api"
)

// Settings are what an operator sets for `circled serve`. They come from
// four places, each overriding the one before: the defaults
// (DefaultSettings), a YAML file (LoadFile), environment variables
// (LoadEnv) and command-line flags (Set, for the flags given). Every
// setting has one name in each place, listed by SettingsTable.
type Settings struct {
	DataDir      string
	Listen       string
	AddrFile     string
	SyncAlways   bool
	TickEvery    time.Duration
	MemoryBudget int64
	LogLevel     slog.Level
	NATSURL      string
	NATSCreds    string
	Replicas     int
	// MetricsListen, MetricsOnAPI and TrustedProxies (comma-separated)
	// are Config's.
	MetricsListen  string
	MetricsOnAPI   bool
	Pprof          bool
	TrustedProxies string
	// AuditSegmentEntries and GovernanceArchiveProposals are Config's
	// (0: the defaults).
	AuditSegmentEntries, GovernanceArchiveProposals int
	// Failover, Advertise and Instance are Config's (failover mode).
	Failover  bool
	Advertise string
	Instance  string

	// GoMemoryLimit is the Go runtime's soft memory limit the serve
	// command sets (GoLimit): 0 for the default, -1 for none.
	GoMemoryLimit int64
}

// DefaultSettings are the settings with nothing set.
func DefaultSettings() Settings {
	d := DefaultConfig()
	return Settings{Listen: d.Listen, MemoryBudget: d.MemoryBudget, LogLevel: slog.LevelInfo}
}

// Apply copies the settings into cfg.
func (s Settings) Apply(cfg *Config) {
	cfg.DataDir, cfg.Listen, cfg.AddrFile = s.DataDir, s.Listen, s.AddrFile
	cfg.SyncAlways, cfg.MemoryBudget = s.SyncAlways, s.MemoryBudget
	if s.TickEvery > 0 { // else the server's default, 30 s
		cfg.TickEvery = s.TickEvery
	}
	cfg.NATSURL, cfg.NATSCreds, cfg.Replicas = s.NATSURL, s.NATSCreds, s.Replicas
	cfg.MetricsListen, cfg.MetricsOnAPI, cfg.Pprof = s.MetricsListen, s.MetricsOnAPI, s.Pprof
	cfg.TrustedProxies = splitList(s.TrustedProxies)
	cfg.AuditSegmentEntries, cfg.GovernanceArchiveProposals = s.AuditSegmentEntries, s.GovernanceArchiveProposals
	cfg.Failover, cfg.Advertise, cfg.Instance = s.Failover, s.Advertise, s.Instance
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Setting is one setting's names and how its value is read.
type Setting struct {
	Key   string // in the YAML file
	Env   string // environment variable
	Flag  string // command-line flag, without dashes
	Usage string
	// Path: a relative path in a file is relative to the file's directory.
	Path bool
	// Bool: a flag that needs no value (--sync-always).
	Bool bool
	set  func(s *Settings, v string) error
}

var settingsTable = []Setting{
	{Key: "data", Env: "CIRCLED_DATA", Flag: "data", Path: true,
		Usage: "the circle's data directory",
		set: func(s *Settings, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			s.DataDir = v
			return nil
		}},
	{Key: "listen", Env: "CIRCLED_LISTEN", Flag: "listen",
		Usage: "HTTP address HOST:PORT; port 0 picks a free port",
		set: func(s *Settings, v string) error {
			if err := checkHostPort(v); err != nil {
				return err
			}
			s.Listen = v
			return nil
		}},
	{Key: "addr_file", Env: "CIRCLED_ADDR_FILE", Flag: "addr-file", Path: true,
		Usage: "write host:port here once ready",
		set:   func(s *Settings, v string) error { s.AddrFile = v; return nil }},
	{Key: "sync_always", Env: "CIRCLED_SYNC_ALWAYS", Flag: "sync-always", Bool: true,
		Usage: "fsync every store write (survives power loss; slower)",
		set: func(s *Settings, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			s.SyncAlways = b
			return nil
		}},
	{Key: "tick_every", Env: "CIRCLED_TICK_EVERY", Flag: "tick-every",
		Usage: "how often the clock-driven work runs (reset recount, proposals due, role terms, mandates, charter; finishing work a stop interrupted): 10ms..24h",
		set: func(s *Settings, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration like 30s", v)
			}
			if d < 10*time.Millisecond || d > 24*time.Hour {
				return fmt.Errorf("%s is outside 10ms..24h", v)
			}
			s.TickEvery = d
			return nil
		}},
	{Key: "memory_budget", Env: "CIRCLED_MEMORY_BUDGET", Flag: "memory-budget",
		Usage: "loaded documents before idle ones are evicted: bytes, or with KiB, MiB, GiB (1MiB..64GiB)",
		set: func(s *Settings, v string) error {
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			if n < 1<<20 || n > 64<<30 {
				return fmt.Errorf("%s is outside 1MiB..64GiB", v)
			}
			s.MemoryBudget = n
			return nil
		}},
	{Key: "go_memory_limit", Env: "CIRCLED_GO_MEMORY_LIMIT", Flag: "go-memory-limit",
		Usage: "soft limit on the Go runtime's memory, past which it collects more often: bytes, or with KiB, MiB, GiB (16MiB..64GiB), or off; default twice the memory budget (GOMEMLIMIT, if set, wins)",
		set: func(s *Settings, v string) error {
			if strings.EqualFold(v, "off") {
				s.GoMemoryLimit = -1
				return nil
			}
			n, err := parseSize(v)
			if err != nil {
				return err
			}
			if n < 16<<20 || n > 64<<30 {
				return fmt.Errorf("%s is outside 16MiB..64GiB", v)
			}
			s.GoMemoryLimit = n
			return nil
		}},
	{Key: "log_level", Env: "CIRCLED_LOG_LEVEL", Flag: "log-level",
		Usage: "debug, info, warn or error",
		set: func(s *Settings, v string) error {
			switch strings.ToLower(v) {
			case "debug":
				s.LogLevel = slog.LevelDebug
			case "info":
				s.LogLevel = slog.LevelInfo
			case "warn":
				s.LogLevel = slog.LevelWarn
			case "error":
				s.LogLevel = slog.LevelError
			default:
				return fmt.Errorf("%q is not one of debug, info, warn, error", v)
			}
			return nil
		}},
	{Key: "metrics_listen", Env: "CIRCLED_METRICS_LISTEN", Flag: "metrics-listen",
		Usage: "serve /metrics (Prometheus) on this HOST:PORT of its own (default: not served)",
		set: func(s *Settings, v string) error {
			if err := checkHostPort(v); err != nil {
				return err
			}
			s.MetricsListen = v
			return nil
		}},
	{Key: "metrics_on_api", Env: "CIRCLED_METRICS_ON_API", Flag: "metrics-on-api", Bool: true,
		Usage: "serve /metrics on the API listener too (it faces the members' devices)",
		set: func(s *Settings, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			s.MetricsOnAPI = b
			return nil
		}},
	{Key: "pprof", Env: "CIRCLED_PPROF", Flag: "pprof", Bool: true,
		Usage: "serve the Go profiler at /debug/pprof/ on the metrics listener (needs metrics_listen)",
		set: func(s *Settings, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			s.Pprof = b
			return nil
		}},
	{Key: "trusted_proxies", Env: "CIRCLED_TRUSTED_PROXIES", Flag: "trusted-proxies",
		Usage: "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client",
		set: func(s *Settings, v string) error {
			if err := mobileapi.CheckTrustedProxies(splitList(v)); err != nil {
				return err
			}
			s.TrustedProxies = v
			return nil
		}},
	{Key: "nats_url", Env: "CIRCLED_NATS_URL", Flag: "nats-url",
		Usage: "external NATS cluster with JetStream keeping the store, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222 (default: the embedded server)",
		set: func(s *Settings, v string) error {
			for _, u := range strings.Split(v, ",") {
				p, err := url.Parse(strings.TrimSpace(u))
				if err != nil || p.Host == "" || (p.Scheme != "nats" && p.Scheme != "tls" && p.Scheme != "ws" && p.Scheme != "wss") {
					return fmt.Errorf("%q is not a NATS URL (nats://HOST:PORT, tls://…; comma separated)", u)
				}
			}
			s.NATSURL = v
			return nil
		}},
	{Key: "nats_creds", Env: "CIRCLED_NATS_CREDS", Flag: "nats-creds", Path: true,
		Usage: "NATS credentials file for nats_url",
		set: func(s *Settings, v string) error {
			if v == "" {
				return errors.New("must not be empty")
			}
			s.NATSCreds = v
			return nil
		}},
	{Key: "replicas", Env: "CIRCLED_REPLICAS", Flag: "replicas",
		Usage: "JetStream replicas of the store's streams, 1..5 (3 on a three-node cluster; above 1 needs nats_url)",
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 5 {
				return fmt.Errorf("%q is not a number 1..5", v)
			}
			s.Replicas = n
			return nil
		}},
	{Key: "audit_segment_entries", Env: "CIRCLED_AUDIT_SEGMENT_ENTRIES", Flag: "audit-segment-entries",
		Usage: "audit entries after which the log moves on to a new segment document, 4..100000 (default 1000)",
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 4 || n > 100000 {
				return fmt.Errorf("%q is not a number 4..100000", v)
			}
			s.AuditSegmentEntries = n
			return nil
		}},
	{Key: "governance_archive_proposals", Env: "CIRCLED_GOVERNANCE_ARCHIVE_PROPOSALS", Flag: "governance-archive-proposals",
		Usage: "proposals after which decided ones move into an archive document, 2..100000 (default 200)",
		set: func(s *Settings, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 2 || n > 100000 {
				return fmt.Errorf("%q is not a number 2..100000", v)
			}
			s.GovernanceArchiveProposals = n
			return nil
		}},
	{Key: "failover", Env: "CIRCLED_FAILOVER", Flag: "failover", Bool: true,
		Usage: "one of several instances of the circle on nats_url: serve while holding the circle's lease, else stand by (needs nats_url)",
		set: func(s *Settings, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			s.Failover = b
			return nil
		}},
	{Key: "advertise", Env: "CIRCLED_ADVERTISE", Flag: "advertise",
		Usage: "the URL devices reach this instance at, told by standbys and /readyz (failover; default http://LISTEN)",
		set: func(s *Settings, v string) error {
			p, err := url.Parse(v)
			if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
				return fmt.Errorf("%q is not an http:// or https:// URL", v)
			}
			s.Advertise = v
			return nil
		}},
	{Key: "instance", Env: "CIRCLED_INSTANCE", Flag: "instance",
		Usage: "this instance's name in the lease and /readyz (failover; default HOSTNAME-PID)",
		set: func(s *Settings, v string) error {
			if v == "" || len(v) > 64 || strings.ContainsAny(v, " \t\r\n\"") {
				return fmt.Errorf("%q: want 1..64 characters without spaces or quotes", v)
			}
			s.Instance = v
			return nil
		}},
}

func checkHostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", v)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number 0..65535", v, port)
	}
	return nil
}

// SettingsTable lists every setting with its names.
func SettingsTable() []Setting { return settingsTable }

// settingKeys is the file keys, for error messages.
func settingKeys() string {
	keys := make([]string, len(settingsTable))
	for i, st := range settingsTable {
		keys[i] = st.Key
	}
	return strings.Join(keys, ", ")
}

// Set sets the setting whose file key is key from its text value. The
// error names the key and says why the value is refused.
func (s *Settings) Set(key, value string) error {
	for _, st := range settingsTable {
		if st.Key == key {
			if err := st.set(s, strings.TrimSpace(value)); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			return nil
		}
	}
	return fmt.Errorf("unknown setting %q (known: %s)", key, settingKeys())
}

// LoadEnv sets every setting whose environment variable is set (and not
// empty) in getenv. The error names the variable.
func (s *Settings) LoadEnv(getenv func(string) string) error {
	for _, st := range settingsTable {
		v := getenv(st.Env)
		if v == "" {
			continue
		}
		if err := st.set(s, strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("environment %s: %w", st.Env, err)
		}
	}
	return nil
}

// maxConfigFile bounds the configuration file read.
const maxConfigFile = 1 << 20

// LoadFile sets the settings a YAML file gives: a mapping of keys (see
// SettingsTable) to single values. An unknown key, a key given twice, a
// value that is not a single value, or a bad value is an error naming the
// file, the line and the key. A relative path in the file is taken
// relative to the file's directory.
func (s *Settings) LoadFile(path string) error {
	_, err := s.loadFile(path)
	return err
}

// loadFile is LoadFile, returning the keys the file sets.
func (s *Settings) loadFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	if len(b) > maxConfigFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxConfigFile)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: not YAML: %w", path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // an empty file sets nothing
	}
	top := doc.Content[0]
	if top.Kind == yaml.ScalarNode && top.Tag == "!!null" {
		return nil, nil // only comments
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: line %d: want a mapping of settings (key: value), like \"listen: 127.0.0.1:8080\"", path, top.Line)
	}
	seen := map[string]bool{}
	// Apply to a copy: a file with an error sets nothing.
	next := *s
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key := k.Value
		st, ok := lookupSetting(key)
		if !ok {
			return nil, fmt.Errorf("%s: line %d: unknown key %q (known: %s)", path, k.Line, key, settingKeys())
		}
		if seen[key] {
			return nil, fmt.Errorf("%s: line %d: %s: given twice", path, k.Line, key)
		}
		seen[key] = true
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s: line %d: %s: want a single value, not a list or mapping", path, v.Line, key)
		}
		if v.Tag == "!!null" {
			return nil, fmt.Errorf("%s: line %d: %s: no value", path, v.Line, key)
		}
		val := strings.TrimSpace(v.Value)
		if st.Path && val != "" && !filepath.IsAbs(val) {
			val = filepath.Join(filepath.Dir(path), val)
		}
		if err := st.set(&next, val); err != nil {
			return nil, fmt.Errorf("%s: line %d: %s: %w", path, v.Line, key, err)
		}
	}
	*s = next
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// CheckConfigFile reads the YAML file at path as `circled serve --config`
// would and reports its first problem (see LoadFile). It returns the
// keys the file sets, sorted.
func CheckConfigFile(path string) ([]string, error) {
	s := DefaultSettings()
	return s.loadFile(path)
}

func lookupSetting(key string) (Setting, bool) {
	for _, st := range settingsTable {
		if st.Key == key {
			return st, true
		}
	}
	return Setting{}, false
}

// Parse checks value as this setting's value, without setting anything.
func (st Setting) Parse(value string) error {
	var scratch Settings
	return st.set(&scratch, strings.TrimSpace(value))
}

// Check reports a setting that serving needs and that nothing gave.
func (s Settings) Check() error {
	if s.DataDir == "" {
		return errors.New("data: required (--data DIR, CIRCLED_DATA or data: in the config file)")
	}
	if s.Replicas > 1 && s.NATSURL == "" {
		return fmt.Errorf("replicas: %d needs nats_url (the embedded server is one node)", s.Replicas)
	}
	if s.NATSCreds != "" && s.NATSURL == "" {
		return errors.New("nats_creds: needs nats_url")
	}
	if s.Failover && s.NATSURL == "" {
		return errors.New("failover: needs nats_url (the instances share the cluster's store and lease)")
	}
	if s.Pprof && s.MetricsListen == "" {
		return errors.New("pprof: needs metrics_listen (the profiler is never served on the API listener)")
	}
	return nil
}

// parseSize reads a byte count: digits, optionally followed by KiB, MiB,
// GiB (or K, M, G, KB, MB, GB: all powers of 1024).
func parseSize(v string) (int64, error) {
	num := strings.TrimRight(v, "KMGiBkmgb ")
	unit := strings.ToUpper(strings.TrimSpace(v[len(num):]))
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (bytes, or e.g. 64MiB)", v)
	}
	var mult int64
	switch unit {
	case "", "B":
		mult = 1
	case "K", "KB", "KIB":
		mult = 1 << 10
	case "M", "MB", "MIB":
		mult = 1 << 20
	case "G", "GB", "GIB":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%q is not a size (bytes, or e.g. 64MiB)", v)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", v)
	}
	return n * mult, nil
}
