package authority

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// lockedBuffer is a log sink safe for the goroutines that write to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTaskPanicIsRecovered: a panic in a background task is logged with
// its stack and counted; the process lives on, and the task's key is
// free again.
func TestTaskPanicIsRecovered(t *testing.T) {
	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	a := New(Config{Logger: slog.New(slog.NewTextHandler(logs, nil)), Registerer: reg})
	a.st.tasks.Do("ledger/x", func() { panic("injected in Do") })
	a.st.tasks.Go(func() { panic("injected in Go") })
	a.st.tasks.Wait()
	ran := false
	a.st.tasks.Do("ledger/x", func() { ran = true })
	a.st.tasks.Wait()
	if !ran {
		t.Errorf("after a panic the task key stays taken")
	}
	if got := counted(t, reg, "circles_panics_total", "task"); got != 2 {
		t.Errorf("circles_panics_total{where=task} = %v, want 2", got)
	}
	out := logs.String()
	for _, want := range []string{"injected in Do", "injected in Go", "tasks_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not mention %q (the panic and its stack):\n%s", want, out)
		}
	}
}

// counted reads counter name{where} from reg.
func counted(t *testing.T, reg *prometheus.Registry, name, where string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "where" && l.GetValue() == where {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
