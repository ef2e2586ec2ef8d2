package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/circles-coop/circles/server"
	"github.com/circles-coop/circles/server/servertest"
	"github.com/circles-coop/circles/wire"
)

// BenchmarkBackup: 10 members write 20,000 entries by REST; then one
// iteration takes a backup through the running server and restores it
// into a new directory. Reported: the file's size, the backup's and the
// restore's duration, and how long serving the restored circle takes to
// be ready.
func BenchmarkBackup(b *testing.B) {
	const members, entries = 10, 20000
	ctx := context.Background()
	c := servertest.Start(b, "Backup Bench")
	cl := servertest.NewClient(c.URL())
	defer cl.Close()
	devs, err := cl.EnrollMembers(c.FounderInvite, members)
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, members)
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < entries/members; i++ {
				e := wire.Entry{ID: uuid.NewString(), Kind: "hours", Quantity: 1, Note: fmt.Sprintf("entry %d", i), At: time.Now().UTC()}
				if err := cl.Do("POST", "/v1/ledger/entries", d.Token, http.StatusCreated, e, nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}

	var size int64
	var backupD, restoreD, openD time.Duration
	b.ResetTimer()
	for b.Loop() {
		out := filepath.Join(b.TempDir(), "b")
		t0 := time.Now()
		if _, err := server.BackupFile(ctx, c.DataDir, out, nil); err != nil {
			b.Fatal(err)
		}
		backupD += time.Since(t0)
		fi, _ := os.Stat(out)
		size = fi.Size()
		dir := filepath.Join(b.TempDir(), "r")
		t0 = time.Now()
		if _, err := server.Restore(ctx, dir, out, nil); err != nil {
			b.Fatal(err)
		}
		restoreD += time.Since(t0)
		cfg := server.DefaultConfig()
		cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
		t0 = time.Now()
		s, err := server.Open(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		openD += time.Since(t0)
		s.Close()
	}
	n := float64(b.N)
	b.ReportMetric(float64(size)/(1<<20), "MiB")
	b.ReportMetric(backupD.Seconds()*1000/n, "backup-ms")
	b.ReportMetric(restoreD.Seconds()*1000/n, "restore-ms")
	b.ReportMetric(openD.Seconds()*1000/n, "open-ms")
}
