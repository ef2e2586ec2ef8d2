package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scriptSummary is what a screen script (mobile-api/app/test/*.mjs)
// prints as its last line, for scripts that need nothing more: axe-core's
// findings by screen and the lines it read off the screen by what they
// are.
type scriptSummary struct {
	Axe   map[string][]string `json:"axe"`
	Lines map[string][]string `json:"lines"`
}

// runScript runs the screen script name (in the phone app's test folder)
// with args, bounded by 3 minutes, and decodes the JSON summary it prints
// as its last line into a T. A script that fails (its exit status, or an
// "error" in its summary) fails tb with what the phone showed ("screen",
// or "screens" for scripts with several phones).
func runScript[T any](tb testing.TB, p phone, name string, args ...string) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	script := filepath.Join(filepath.Dir(p.script), name)
	cmd := exec.CommandContext(ctx, p.node, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_NO_WARNINGS=1", "CHROMIUM="+p.chromium)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	tb.Logf("node %s (%s):\n%s", name, time.Since(start).Round(time.Millisecond), stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	last := []byte(lines[len(lines)-1])
	var s T
	if err := json.Unmarshal(last, &s); err != nil {
		tb.Fatalf("%s: %v; its summary is not JSON (%v):\n%s", name, runErr, err, stdout.String())
	}
	var failed struct {
		Error   string          `json:"error"`
		Screen  json.RawMessage `json:"screen"`
		Screens json.RawMessage `json:"screens"`
	}
	_ = json.Unmarshal(last, &failed)
	if runErr != nil || failed.Error != "" {
		tb.Fatalf("%s failed (%v): %s\nthe phone showed:\n%s %s", name, runErr, failed.Error, failed.Screen, failed.Screens)
	}
	return s
}

func jsonInto(b []byte, v any) bool { return json.Unmarshal(b, v) == nil }
