package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/jobs"
)

// serve runs an Asynq server with the handlers until the test ends (or
// its Shutdown).
func (e *env) serve(t *testing.T, h *jobs.Imports, concurrency int) *asynq.Server {
	t.Helper()
	mux := asynq.NewServeMux()
	h.Register(mux)
	cfg := jobs.ServerConfig(concurrency, nil)
	cfg.LogLevel = asynq.ErrorLevel
	srv := asynq.NewServerFromRedisClient(e.rdb, cfg)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func (e *env) waitFinished(t *testing.T, id string, within time.Duration) importer.Progress {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if got, _ := e.store.Import(context.Background(), id); got.Finished() {
			p, _ := e.store.Progress(context.Background(), id)
			return p
		}
		if time.Now().After(deadline) {
			p, _ := e.store.Progress(context.Background(), id)
			t.Fatalf("import %s not finished after %s: %+v", id, within, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFeedQueuesAWindowAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:300ms", nil)
	const rows, window = 30, 10
	h := jobs.NewImports(e.api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: 200 * time.Millisecond, PollMax: time.Second, Window: window})
	imp := e.newImport(t, "imp-window", -1, importer.Options{})
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	// Watch the queue and the feed while the import runs.
	var maxInFlight, maxQueued atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if fs, err := e.store.Feed(ctx, "imp-window"); err == nil && int64(fs.InFlight()) > maxInFlight.Load() {
				maxInFlight.Store(int64(fs.InFlight()))
			}
			var queued int64
			for _, q := range []string{jobs.QueueSubmit, jobs.QueueCheck} {
				if info, err := e.insp.GetQueueInfo(q); err == nil {
					queued += int64(info.Size)
				}
			}
			if queued > maxQueued.Load() {
				maxQueued.Store(queued)
			}
		}
	}()
	e.serve(t, h, 8)
	p := e.waitFinished(t, "imp-window", 60*time.Second)
	close(stop)
	<-watched

	if p.Counts[importer.Succeeded] != rows {
		t.Errorf("progress %+v, want %d succeeded", p, rows)
	}
	if got := e.sandbox.Stats().Creates; got != rows {
		t.Errorf("the API saw %d creates for %d rows", got, rows)
	}
	if m := maxInFlight.Load(); m > window || m == 0 {
		t.Errorf("up to %d rows were in flight; the window is %d", m, window)
	}
	// A row in flight has one task at a time (its submit or its check),
	// and two for a moment while one queues the next.
	if m := maxQueued.Load(); m > 2*window {
		t.Errorf("up to %d submit and check tasks were on the queue; the window is %d", m, window)
	}
	if fs, _ := e.store.Feed(ctx, "imp-window"); fs.Cursor != rows+1 || fs.InFlight() != 0 {
		t.Errorf("feed ended at %+v, want cursor %d and nothing in flight", fs, rows+1)
	}
}

// A feed that died after marking rows but before queuing their submits
// leaves its cursor behind them: the next feed queues them.
func TestFeedRecoversRowsMarkedButNotQueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:0s", nil)
	const rows = 12
	imp := e.newImport(t, "imp-crash", -1, importer.Options{})
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	fs, _ := e.store.Feed(ctx, "imp-crash")
	if _, marked, _, _, err := e.store.FeedBatch(ctx, "imp-crash", fs.Gen, 1, 5, 100, -1); err != nil || len(marked) != 5 {
		t.Fatalf("FeedBatch = %v, %v", marked, err)
	}
	// The dead feed's task is redelivered: run it twice, as Asynq may.
	for i := 0; i < 2; i++ {
		task, _, err := jobs.NewFeedTask(jobs.FeedPayload{ImportID: "imp-crash", Gen: fs.Gen, Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	e.serve(t, e.h, 4)
	p := e.waitFinished(t, "imp-crash", 30*time.Second)
	if p.Counts[importer.Succeeded] != rows {
		t.Errorf("progress %+v, want %d succeeded", p, rows)
	}
	for id, n := range e.sandbox.Stats().CreatesByIdentity {
		if n != 1 {
			t.Errorf("%s created %d times", id, n)
		}
	}
}
