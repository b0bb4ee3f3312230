package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// lineageStore is the real store whose primaries' lineage the test
// changes, as a failover would.
type lineageStore struct {
	*store.Store
	lineage atomic.Value
	// reads counts the watch's looks at the lineage.
	reads atomic.Int64
}

func (s *lineageStore) Lineage(context.Context) (string, error) {
	s.reads.Add(1)
	return s.lineage.Load().(string), nil
}

// A failover lost every task of an import midway (submits queued, status
// checks scheduled, the feed's next step): when the workers see a new
// primary, the unfinished import's tasks are queued again, and it finishes
// with each resident created once.
func TestANewPrimaryRequeuesLostTasks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "uniform:500ms-1500ms", nil)
	ls := &lineageStore{Store: e.store}
	ls.lineage.Store("primary-1")
	h := jobs.NewImports(e.api, ls, e.queue, e.reports, nil, jobs.Config{PollInitial: 200 * time.Millisecond, PollMax: time.Second, Window: 20})
	const rows = 60
	imp := e.newImport(t, "imp-lost", -1, importer.Options{})
	if _, err := h.Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	srv := e.serve(t, h, 8)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rowsInFlight, states, _ := e.store.RowsInFlight(ctx, "imp-lost")
		followed := 0
		for _, s := range states {
			if s.JobID != "" {
				followed++
			}
		}
		if followed >= 10 && len(rowsInFlight) > followed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no rows followed after 30s")
		}
	}
	srv.Shutdown()
	// The failover: every task of every queue is gone.
	queues, _ := e.insp.Queues()
	for _, q := range queues {
		e.insp.DeleteAllPendingTasks(q)
		e.insp.DeleteAllScheduledTasks(q)
		e.insp.DeleteAllRetryTasks(q)
	}
	before, _ := e.store.Progress(ctx, "imp-lost")
	if before.Done() {
		t.Fatal("the import finished before its tasks were lost: the test proves nothing")
	}

	e.serve(t, h, 8)
	watch, stop := context.WithCancel(ctx)
	defer stop()
	go h.WatchRedis(watch, 100*time.Millisecond)
	// The watch knows the first primary before the failover.
	waitFor(t, 10*time.Second, "the watch never read the lineage", func() bool { return ls.reads.Load() >= 2 })
	ls.lineage.Store("primary-2")
	e.waitFinished(t, "imp-lost", 60*time.Second)
	p, _ := e.store.Progress(ctx, "imp-lost")
	if p.Counts[importer.Succeeded] != rows {
		t.Errorf("progress = %+v, want %d succeeded", p, rows)
	}
	stats := e.sandbox.Stats()
	if stats.Creates != rows {
		t.Errorf("the API saw %d creates for %d rows", stats.Creates, rows)
	}
	for id, n := range stats.CreatesByIdentity {
		if n != 1 {
			t.Errorf("%s created %d times", id, n)
		}
	}
}
