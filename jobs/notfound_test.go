package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
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

// The API answers a status read of a job it does not know with 404 or 400
// (undocumented which). Either ends the row job_not_found at the first such
// read, without spending the retry budget on it; the row keeps its job id,
// is never offered in failed.csv (its write may have happened), and
// 'importer retry' follows the job again, which then ends the row as its
// write did, sending nothing twice.
func TestUnknownJobEndsJobNotFoundAtOnce(t *testing.T) {
	t.Parallel()
	for _, status := range []int{404, 400} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			ctx := context.Background()
			lat, _ := sandbox.ParseLatency("fixed:0s")
			sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, Seed: 11,
				Faults: sandbox.Faults{StatusNotFoundRate: 1}, Variants: sandbox.Variants{UnknownJobStatus: status}})
			api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
			e := envOn(t, redistestClient(t))
			h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second, MaxRetry: 10})
			serve(t, e.rdb, h, 1, 10)
			const rows = 20
			imp := e.newImport(t, "imp-404", -1, importer.Options{})
			if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
				t.Fatal(err)
			}
			waitFinished(t, e.store, "imp-404", 40*time.Second)
			for row := 1; row <= rows; row++ {
				r := e.result(t, "imp-404", row)
				if r.Outcome != importer.Failed || r.ErrorCode != importer.CodeJobNotFound || r.JobID == "" || r.SafeToResend() || !jobs.Retryable(r) {
					t.Errorf("row %d = %+v: want job_not_found with its job id, kept out of failed.csv, followed again by retry", row, r)
				}
			}
			if got := sb.Stats().Requests["write_status"]; got != rows {
				t.Errorf("%d status reads for %d rows: an unknown job is read once", got, rows)
			}

			sb.SetFaults(sandbox.Faults{})
			if res, err := e.commands().Retry(ctx, "imp-404", jobs.RetryOptions{}); err != nil || res.Reopened != rows {
				t.Fatalf("retry: %+v, %v", res, err)
			}
			waitFinished(t, e.store, "imp-404", 40*time.Second)
			if p, _ := e.store.Progress(ctx, "imp-404"); p.Counts[importer.Succeeded] != rows {
				t.Errorf("after the retry: %+v, want every row succeeded", p.Counts)
			}
			if got := sb.Stats().Creates; got != rows {
				t.Errorf("%d creates for %d rows", got, rows)
			}
		})
	}
}
