package jobs_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// serve runs n Asynq servers of the handlers on rdb until the test ends.
func serve(t *testing.T, rdb *redis.Client, h *jobs.Imports, n, concurrency int) {
	t.Helper()
	for i := 0; i < n; i++ {
		mux := asynq.NewServeMux()
		h.Register(mux)
		cfg := jobs.ServerConfig(concurrency, nil)
		cfg.LogLevel = asynq.FatalLevel
		cfg.ErrorHandler = h
		srv := asynq.NewServerFromRedisClient(rdb, cfg)
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
}

// waitFinished waits for an import's report to be written.
func waitFinished(t *testing.T, st *store.Store, id string, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); ; time.Sleep(50 * time.Millisecond) {
		imp, err := st.Import(context.Background(), id)
		if err == nil && imp.Finished() {
			return
		}
		if time.Now().After(deadline) {
			p, _ := st.Progress(context.Background(), id)
			t.Fatalf("import %s not finished after %v: %+v", id, limit, p)
		}
	}
}

// The API answers 404 to a fifth of the status reads of jobs it made. Such
// a 404 is read again, not taken as the write's end; a job that every read
// calls unknown ends job_not_found with its job id, and is never offered in
// failed.csv (its write may have happened).
func TestStatusRead404IsReadAgain(t *testing.T) {
	for _, tt := range []struct {
		name     string
		rate     float64
		maxRetry int
		want     importer.Outcome
	}{
		{name: "a fifth of the reads", rate: 0.2, maxRetry: 10, want: importer.Succeeded},
		{name: "every read", rate: 1, maxRetry: 1, want: importer.Failed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			lat, _ := sandbox.ParseLatency("fixed:0s")
			sb := sandbox.New(sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, Seed: 11, Faults: sandbox.Faults{StatusNotFoundRate: tt.rate}})
			srv := httptest.NewServer(sb.Handler())
			defer srv.Close()
			api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
			e := envOn(t, redistestClient(t))
			h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second, MaxRetry: tt.maxRetry})
			serve(t, e.rdb, h, 1, 10)
			const rows = 20
			imp := e.newImport(t, "imp-404", -1, importer.Options{})
			if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
				t.Fatal(err)
			}
			waitFinished(t, e.store, "imp-404", 40*time.Second)
			for row := 1; row <= rows; row++ {
				r := e.result(t, "imp-404", row)
				if r.Outcome != tt.want || r.JobID == "" {
					t.Errorf("row %d = %+v, want %s with its job id", row, r, tt.want)
				}
				if r.Outcome == importer.Failed && (r.ErrorCode != importer.CodeJobNotFound || r.SafeToResend() || !jobs.Retryable(r)) {
					t.Errorf("row %d = %+v: want job_not_found, kept out of failed.csv, followed again by retry", row, r)
				}
			}
			if sb.Stats().Faults["status_not_found"] == 0 {
				t.Error("the sandbox answered no status read 404")
			}
			if got := sb.Stats().Creates; got != rows {
				t.Errorf("%d creates for %d rows", got, rows)
			}
		})
	}
}
