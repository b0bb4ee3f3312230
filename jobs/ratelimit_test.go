package jobs_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/ratelimit"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/jobs"
)

// runWorkers imports rows with three worker servers, each with its own API
// client and limiter on the shared Redis, and waits until the import ends.
// A limit of 0 leaves the limiter at its default, following the API.
func runWorkers(t *testing.T, e *env, url string, window time.Duration, limit, rows int) {
	t.Helper()
	ctx := context.Background()
	imp := e.newImport(t, "imp-limited", -1, importer.Options{Mode: importer.ModeCreate})
	for i := 0; i < 3; i++ {
		limiter := ratelimit.New(e.rdb, ratelimit.Config{Limit: limit, Period: window})
		api, _ := propexo.New(propexo.Config{BaseURL: url, APIKey: apiKey, OnAnswer: limiter.Observe})
		h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second, Limiter: limiter})
		mux := asynq.NewServeMux()
		h.Register(mux)
		cfg := jobs.ServerConfig(4, nil)
		cfg.LogLevel = asynq.FatalLevel
		srv := asynq.NewServerFromRedisClient(e.rdb, cfg)
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if got, _ := e.store.Import(ctx, imp.ID); got.Finished() {
			return
		}
		if time.Now().After(deadline) {
			p, _ := e.store.Progress(ctx, imp.ID)
			t.Fatalf("not finished after 60s: %+v", p)
		}
	}
}

func limitedSandbox(t *testing.T, window time.Duration, limit int) (*sandbox.Server, string) {
	t.Helper()
	lat, _ := sandbox.ParseLatency("fixed:200ms")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: limit, RateWindow: window, SlowDelay: 300 * time.Millisecond})
	return sb, srv.URL
}

func TestThreeWorkersShareTheLimitWithout429(t *testing.T) {
	t.Parallel()
	const window, limit, rows = 2 * time.Second, 30, 45
	sb, url := limitedSandbox(t, window, limit)
	e := envOn(t, redistestClient(t))
	began := time.Now()
	runWorkers(t, e, url, window, limit, rows)
	took := time.Since(began)
	st := sb.Stats()
	if st.RateLimited != 0 {
		t.Errorf("the workers got %d answers 429 in steady state", st.RateLimited)
	}
	if st.ResidentsCreated != rows {
		t.Errorf("%d residents created for %d rows", st.ResidentsCreated, rows)
	}
	total := 0
	for _, n := range st.Requests {
		total += n
	}
	// The budget is what bounds the time: used well, the import takes
	// about total/limit windows.
	if min := time.Duration(total-limit) * window / limit; took < min {
		t.Errorf("%d requests in %v: faster than the limit allows", total, took)
	}
}

func TestA429PausesEveryWorker(t *testing.T) {
	t.Parallel()
	const window, limit, rows = 5 * time.Second, 40, 20
	sb, url := limitedSandbox(t, window, limit)
	// Another client of the same customer spends a whole window, at its
	// start, just before the import begins.
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window + 50*time.Millisecond)))
	for i := 0; i < limit; i++ {
		req, _ := http.NewRequest("GET", url+"/v1/residents/", nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	e := envOn(t, redistestClient(t))
	runWorkers(t, e, url, window, limit, rows)
	st := sb.Stats()
	// The first requests that meet the spent window get 429 (at most one
	// per worker slot in flight); then everyone waits for the window.
	if st.RateLimited == 0 || st.RateLimited > 12 || st.RateLimited != st.Requests["create_resident"]+st.Requests["write_status"]-2*rows {
		t.Errorf("%d answers 429; want a few, then a pause for everyone (requests %v)", st.RateLimited, st.Requests)
	}
	if st.ResidentsCreated != rows {
		t.Errorf("%d residents created for %d rows", st.ResidentsCreated, rows)
	}
}

// A contract below the default: the API allows 20 requests a window, and
// the workers, told nothing, start at 150 and follow the limit the first
// answers announce. No 429 storm.
func TestTheWorkersFollowTheAnnouncedLimit(t *testing.T) {
	t.Parallel()
	const window, limit, rows = 2 * time.Second, 20, 30
	sb, url := limitedSandbox(t, window, limit)
	e := envOn(t, redistestClient(t))
	runWorkers(t, e, url, window, 0, rows)
	st := sb.Stats()
	if st.RateLimited != 0 {
		t.Errorf("%d answers 429 under an announced limit of %d", st.RateLimited, limit)
	}
	if st.ResidentsCreated != rows {
		t.Errorf("%d residents created for %d rows", st.ResidentsCreated, rows)
	}
}
