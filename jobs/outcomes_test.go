package jobs_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/jobs"
)

// forgetfulAPI is the real client, except that created records cannot be
// read back: what --verify is there to catch.
type forgetfulAPI struct{ *propexo.Client }

func (forgetfulAPI) GetResident(ctx context.Context, id string) (importer.ResidentRecord, error) {
	return importer.ResidentRecord{}, &importer.APIError{Kind: importer.KindNotFound, Op: "GET /v1/residents/{id}", Status: 404}
}

func TestResolvedWritesBecomeOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sandbox   sandbox.Config
		verify    bool
		forgetful bool
		outcome   importer.Outcome
		code      string
		message   string
		reads     int // GET /v1/residents/{id}
	}{
		{name: "success", outcome: importer.Succeeded},
		{name: "success verified", verify: true, outcome: importer.Succeeded, reads: 1},
		{name: "success but the record is missing", verify: true, forgetful: true, outcome: importer.Failed, code: importer.CodeRecordGone, message: "cannot be read back"},
		{name: "failure", sandbox: sandbox.Config{FailureRate: 1}, outcome: importer.Failed, code: importer.CodeWriteFailed, message: "The PMS is undergoing maintenance; try again later (503)"},
		{name: "partial success", sandbox: sandbox.Config{PartialRate: 1}, outcome: importer.Partial, code: importer.CodePartial, message: "contact preferences could not be saved (422)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := redistestClient(t)
			cfg := tt.sandbox
			cfg.APIKey = apiKey
			cfg.Latency, _ = sandbox.ParseLatency("fixed:0s")
			sb, srv := sandboxtest.Serve(t, cfg)
			client, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
			var api importer.WriteAPI = client
			if tt.forgetful {
				api = forgetfulAPI{client}
			}
			e := envOn(t, rdb)
			h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{})
			e.newImport(t, "imp-outcome", 1, importer.Options{Verify: tt.verify})
			if err := h.ProcessTask(ctx, submitTask(t, "imp-outcome", 1)); err != nil {
				t.Fatal(err)
			}
			st, _ := e.store.RowState(ctx, "imp-outcome", 1)
			task, _, _ := jobs.NewCheckTask(jobs.CheckPayload{ImportID: "imp-outcome", Row: 1, JobID: st.JobID, Check: 1, Deadline: time.Now().Add(time.Hour), Verify: tt.verify}, 0, 3)
			if err := h.ProcessTask(ctx, task); err != nil {
				t.Fatal(err)
			}
			r := e.result(t, "imp-outcome", 1)
			if r.Outcome != tt.outcome || r.ErrorCode != tt.code || !strings.Contains(r.Error, tt.message) || r.JobID != st.JobID {
				t.Errorf("result = %+v, want %s %q containing %q", r, tt.outcome, tt.code, tt.message)
			}
			if got := sb.Stats().Requests["get_resident"]; got != tt.reads {
				t.Errorf("%d records read back, want %d", got, tt.reads)
			}
		})
	}
}

func TestRateLimitIsAWaitNotAFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	e := envOn(t, redistestClient(t))
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{})
	e.newImport(t, "imp-429", 1, importer.Options{})
	err := h.ProcessTask(ctx, submitTask(t, "imp-429", 1))
	if err == nil {
		t.Fatal("a 429 was taken as done")
	}
	if jobs.IsFailure(err) {
		t.Errorf("a 429 spends the retry budget: %v", err)
	}
	if d := jobs.RetryDelay(0, err, nil); d != 7*time.Second {
		t.Errorf("retry after %v, want the 7s the API asked for", d)
	}
	st, _ := e.store.RowState(ctx, "imp-429", 1)
	if st.Sending || st.Resolved {
		t.Errorf("row state after a 429 = %+v, want untouched: nothing was created", st)
	}
	stats, _ := e.store.Stats(ctx, "imp-429")
	if stats[importer.StatRateLimited] != 1 || stats[importer.StatRequests(importer.EndpointCreate)] != 1 {
		t.Errorf("counters = %v", stats)
	}
}

// A create answered 5xx may have reached the API: it is looked up, never
// sent again; when even the lookups fail, the row ends in_doubt. A create
// that certainly never left (the connection was refused) is retried with
// backoff, and when the budget is spent the import stops (the API is out of
// reach), the row unsent, to be sent when it is run again. Either way the
// task ends: nothing is lost.
func TestServerErrorsAreLookedUpUnreachableIsRetried(t *testing.T) {
	t.Parallel()
	var posts, gets atomic.Int32
	answering := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		} else {
			gets.Add(1)
		}
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer answering.Close()
	refusing := httptest.NewServer(http.NotFoundHandler())
	refusing.Close()
	for _, tt := range []struct {
		name string
		url  string
		code string // empty: the import stops instead
	}{
		{name: "502", url: answering.URL, code: importer.CodeInDoubt},
		{name: "connection refused", url: refusing.URL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rdb := redistestClient(t)
			e := envOn(t, rdb)
			api, _ := propexo.New(propexo.Config{BaseURL: tt.url, APIKey: apiKey})
			h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{MaxRetry: 1, LookupWaits: []time.Duration{time.Second}})
			e.newImport(t, "imp-5xx", 1, importer.Options{})
			task, opts, _ := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: "imp-5xx", Row: 1, Vendor: importer.VendorGeneric, Resident: resident(1)}, 1)
			if _, err := e.queue.Enqueue(task, opts...); err != nil {
				t.Fatal(err)
			}
			mux := asynq.NewServeMux()
			h.Register(mux)
			cfg := jobs.ServerConfig(2, nil)
			cfg.LogLevel = asynq.FatalLevel
			cfg.RetryDelayFunc = func(int, error, *asynq.Task) time.Duration { return time.Second }
			server := asynq.NewServerFromRedisClient(rdb, cfg)
			if err := server.Start(mux); err != nil {
				t.Fatal(err)
			}
			defer server.Shutdown()
			deadline := time.Now().Add(20 * time.Second)
			for {
				p, _ := e.store.Progress(context.Background(), "imp-5xx")
				imp, _ := e.store.Import(context.Background(), "imp-5xx")
				if p.Resolved == 1 || imp.Stopped != "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("row not resolved after 20s (%d posts)", posts.Load())
				}
				time.Sleep(100 * time.Millisecond)
			}
			if tt.code == "" {
				imp, _ := e.store.Import(context.Background(), "imp-5xx")
				st, _ := e.store.RowState(context.Background(), "imp-5xx", 1)
				if !strings.Contains(imp.Stopped, "the API could not be reached through every retry") || st.Resolved || st.Sending || st.JobID != "" {
					t.Errorf("import stopped %q, row %+v: want the import stopped and the row unsent", imp.Stopped, st)
				}
			} else if r := e.result(t, "imp-5xx", 1); r.Outcome != importer.Failed || r.ErrorCode != tt.code || r.SafeToResend() {
				t.Errorf("result = %+v, want failed %s, not safe to send again", r, tt.code)
			}
			if got := e.taskState(t, jobs.QueueSubmit, jobs.SubmitTaskID("imp-5xx", 1, 0)); got == "archived" {
				t.Error("the submit task was archived: the row's failure must end the task")
			}
		})
	}
	if posts.Load() != 1 || gets.Load() < 1 {
		t.Errorf("the API answering 502 saw %d creates and %d lookups; want 1 create, then lookups only", posts.Load(), gets.Load())
	}
}
