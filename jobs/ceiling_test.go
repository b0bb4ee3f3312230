package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/jobs"
)

// twoIntegrations yields a rows of integration A (Rent Manager), then b rows
// of integration B (Rentvine).
func twoIntegrations(a, b int) *fakeRows {
	return &fakeRows{n: a + b, edit: func(n int, r *importer.Resident) {
		if n > a {
			r.IntegrationID, r.PropertyID = "int_rentvine_demo", ""
		}
	}}
}

// An integration that publishes max_job_concurrency 3 never has more than 3
// of the importer's writes in flight (as the importer counts them, and as
// the API sees them), though its import has 24 rows and 16 workers; the rows of another integration, behind them in the file, go
// through meanwhile and finish first.
func TestCeilingPerIntegration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lat, _ := sandbox.ParseLatency("fixed:600ms")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, MaxJobConcurrency: 3})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	published, err := api.IntegrationLimits(ctx)
	if err != nil || published["int_rentmanager_demo"] != 3 {
		t.Fatalf("published limits = %v, %v; want 3 for each integration", published, err)
	}
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: 300 * time.Millisecond, PollMax: time.Second,
		Ceilings: jobs.Ceilings{Published: published}})
	const a, b = 24, 6
	imp := e.newImport(t, "imp-ceiling", -1, importer.Options{})
	if _, err := h.Split(ctx, imp, twoIntegrations(a, b)); err != nil {
		t.Fatal(err)
	}
	var most atomic.Int32
	sampling, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for sampling.Err() == nil {
			if n, err := e.store.InFlight(ctx, "int_rentmanager_demo"); err == nil && int32(n) > most.Load() {
				most.Store(int32(n))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	e.serve(t, h, 8)
	e.serve(t, h, 8)
	e.waitFinished(t, "imp-ceiling", 90*time.Second)
	stop()
	if got := most.Load(); got > 3 || got < 3 {
		t.Errorf("integration A had at most %d writes in flight; want its ceiling, 3, reached and never passed", got)
	}
	if n, _ := e.store.InFlight(ctx, "int_rentmanager_demo"); n != 0 {
		t.Errorf("%d places still taken after every row resolved", n)
	}
	var lastA, lastB time.Time
	for r, err := range e.store.Rows(ctx, "imp-ceiling", a+b) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Result.Outcome != importer.Succeeded {
			t.Errorf("row %d: %s %s", r.Result.Row, r.Result.Outcome, r.Result.Error)
		}
		last := &lastA
		if r.Result.Row > a {
			last = &lastB
		}
		if r.Result.At.After(*last) {
			*last = r.Result.At
		}
	}
	if !lastB.Before(lastA) {
		t.Errorf("integration B's last row resolved at %v, after A's last at %v: A's queue held B back", lastB, lastA)
	}
	stats := sb.Stats()
	if got := stats.MostPending["int_rentmanager_demo"]; got > 3 {
		t.Errorf("the API saw %d of integration A's writes PENDING at once; want its ceiling, 3, at most", got)
	}
	if stats.Creates != a+b {
		t.Errorf("%d creates for %d rows", stats.Creates, a+b)
	}
	for id, n := range stats.CreatesByIdentity {
		if n != 1 {
			t.Errorf("%s created %d times", id, n)
		}
	}
}
