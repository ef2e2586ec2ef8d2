package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// parseQuantity reads the first argument of "log": a Go duration ("2h",
// "1.5h", "90m", "1h30m"), which is a number of hours, or a plain positive
// number. hours reports whether it was a duration.
func parseQuantity(s string) (q float64, hours bool, err error) {
	s = strings.TrimSpace(s)
	if f, perr := strconv.ParseFloat(s, 64); perr == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
			return 0, false, fmt.Errorf("quantity %q: want a number greater than 0", s)
		}
		return f, false, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, false, fmt.Errorf("quantity %q: want a duration like 2h, 1.5h or 90m, or a number", s)
	}
	if d <= 0 {
		return 0, false, fmt.Errorf("quantity %q: want a duration greater than 0", s)
	}
	// Round off the float noise of the division (20m = 0.333333 h).
	return math.Round(d.Hours()*1e6) / 1e6, true, nil
}

// timeLayouts are the absolute forms --at accepts besides RFC 3339; they
// are read in the local time zone.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

// parseWhen reads --at: RFC 3339, a local date with or without a time,
// "now", "today" (now), "yesterday" (24 hours ago), or a negative duration
// meaning that long ago ("-3h").
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "now", "today":
		return now, nil
	case "yesterday":
		return now.Add(-24 * time.Hour), nil
	}
	if strings.HasPrefix(s, "-") {
		if d, err := time.ParseDuration(s); err == nil {
			return now.Add(d), nil
		}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2025-05-01T18:00:00Z), 2025-05-01 18:00, 2025-05-01, yesterday or -3h", s)
}

// inviteCode takes an invite as given to "join": the code itself, or an
// invite URL holding it in a "code" or "invite" query parameter, in its
// fragment, or as its last path segment.
func inviteCode(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	for _, k := range []string{"code", "invite"} {
		if v := u.Query().Get(k); v != "" {
			return v
		}
	}
	if u.Fragment != "" {
		return u.Fragment
	}
	if base := path.Base(u.Path); base != "/" && base != "." {
		return base
	}
	return s
}

// splitInviteURL splits an invite URL ("https://host/join#CODE") into the
// server's base URL and the code; ok is false if s holds no code.
func splitInviteURL(s string) (server, code string, ok bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", false
	}
	code = inviteCode(s)
	if code == "" || strings.Contains(code, "://") {
		return "", "", false
	}
	return u.Scheme + "://" + u.Host, code, true
}

// parseArgs parses fs's flags wherever they stand among the positional
// arguments ("log 2h note --kind meal" as well as "log --kind meal 2h
// note") and returns the positional ones. After "--" everything is
// positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError is a wrong command line: run prints it with the usage and
// exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue) || errors.Is(err, flag.ErrHelp)
}
