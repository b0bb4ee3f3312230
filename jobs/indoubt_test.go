package jobs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/jobs"
)

// The create reaches the API but its answer is lost (the sandbox drops the
// connection after making the job). The row is looked up, not resent: while
// the write is PENDING the lookup finds nothing and is tried again later;
// once it resolves, the resident is adopted. One resident in the end.
func TestLostAnswerEndsWithOneResident(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := sandbox.NewManualClock(time.Now())
	lat, _ := sandbox.ParseLatency("fixed:30s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, Now: clk.Now, Faults: sandbox.Faults{DropRate: 1}})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{})
	e.newImport(t, "imp-lost", 1, importer.Options{})
	task := submitTask(t, "imp-lost", 1)

	err := h.ProcessTask(ctx, task)
	var apiErr *importer.APIError
	if !errors.As(err, &apiErr) || !apiErr.MaybeSent {
		t.Fatalf("first delivery: %v, want a lost answer", err)
	}
	sb.SetFaults(sandbox.Faults{})
	err = h.ProcessTask(ctx, task)
	if err == nil || jobs.IsFailure(err) {
		t.Fatalf("redelivery while the write is PENDING: %v, want a wait to look again", err)
	}
	if d := jobs.RetryDelay(0, err, task); d < 10*time.Second {
		t.Errorf("looking again in %v", d)
	}
	clk.Add(time.Minute)
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	r := e.result(t, "imp-lost", 1)
	if r.Outcome != importer.Succeeded || !strings.HasPrefix(r.RecordID, "res_") || !strings.Contains(r.Error, "adopted") {
		t.Errorf("result = %+v", r)
	}
	st := sb.Stats()
	if st.Creates != 1 || st.ResidentsCreated != 1 || st.Requests["list_residents"] != 2 {
		t.Errorf("sandbox: %d creates, %d residents, %d lookups; want 1, 1, 2", st.Creates, st.ResidentsCreated, st.Requests["list_residents"])
	}
}

// Without an email the resident is looked up by name and date of birth.
func TestLookupByNameAndBirthDate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := sandbox.NewManualClock(time.Now())
	lat, _ := sandbox.ParseLatency("fixed:1s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, Now: clk.Now})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{})
	e.newImport(t, "imp-name", 2, importer.Options{})
	twin := func(dob string) importer.Resident {
		return importer.Resident{IntegrationID: "int_rentvine_demo", FirstName: "Sam", LastName: "Lee", DateOfBirth: dob}
	}
	// Two residents named Sam Lee exist; only one was born on this day.
	for _, dob := range []string{"1980-01-02T00:00:00Z", "1999-09-09T00:00:00Z"} {
		if _, err := api.CreateResident(ctx, importer.VendorGeneric, twin(dob)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(time.Minute)
	e.send(t, "imp-name", 1)
	task, _, _ := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: "imp-name", Row: 1, Vendor: importer.VendorGeneric, Resident: twin("1980-01-02T00:00:00Z")}, 3)
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if r := e.result(t, "imp-name", 1); r.Outcome != importer.Succeeded || r.RecordID == "" {
		t.Errorf("row 1 = %+v, want the resident born that day adopted", r)
	}
	if sb.Stats().Creates != 2 {
		t.Error("a create was sent for a row in doubt")
	}
}

// A task that fails for good for a reason no handler turned into an outcome
// still ends its row, so the import finishes.
func TestTaskFailingForGoodFailsItsRow(t *testing.T) {
	t.Parallel()
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(nil, e.store, e.queue, e.reports, nil, jobs.Config{})
	e.newImport(t, "imp-bug", 1, importer.Options{})
	task := submitTask(t, "imp-bug", 1)
	mux := asynq.NewServeMux()
	mux.HandleFunc(jobs.TypeSubmit, func(context.Context, *asynq.Task) error { return errors.New("a bug") })
	cfg := jobs.ServerConfig(1, nil)
	cfg.LogLevel = asynq.FatalLevel
	cfg.ErrorHandler = h
	server := asynq.NewServerFromRedisClient(e.rdb, cfg)
	if err := server.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer server.Shutdown()
	_, opts, _ := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: "imp-bug", Row: 1}, 0)
	if _, err := e.queue.Enqueue(task, append(opts, asynq.MaxRetry(0))...); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p, _ := e.store.Progress(context.Background(), "imp-bug"); p.Resolved == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the row was never resolved")
		}
	}
	if r := e.result(t, "imp-bug", 1); r.Outcome != importer.Failed || r.ErrorCode != importer.CodeInternal || !strings.Contains(r.Error, "a bug") {
		t.Errorf("result = %+v", r)
	}
}

// A gateway (or the API itself) answers 5xx after the create took effect:
// 502 or 504 pages in HTML, JSON, or the API's 500. Each such create may
// have reached the API, so it is looked up once its write had time to
// resolve, and adopted: no create is sent twice.
func TestCreateAnswered5xxAfterTheWriteIsNotSentTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := sandbox.NewManualClock(time.Now())
	lat, _ := sandbox.ParseLatency("fixed:5s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, Now: clk.Now, Seed: 3, Faults: sandbox.Faults{GatewayErrorRate: 1}})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{})
	const rows = 8
	e.newImport(t, "imp-5xx", rows, importer.Options{})
	statuses := map[int]bool{}
	for row := 1; row <= rows; row++ {
		err := h.ProcessTask(ctx, submitTask(t, "imp-5xx", row))
		var apiErr *importer.APIError
		if !errors.As(err, &apiErr) || !apiErr.MaybeSent || apiErr.Status < 500 || jobs.IsFailure(err) {
			t.Fatalf("row %d: %v, want a 5xx taken as maybe sent, and a wait", row, err)
		}
		statuses[apiErr.Status] = true
	}
	if len(statuses) < 2 {
		t.Errorf("the sandbox answered only %v; want its 5xx variants", statuses)
	}
	sb.SetFaults(sandbox.Faults{})
	clk.Add(time.Minute)
	for row := 1; row <= rows; row++ {
		if err := h.ProcessTask(ctx, submitTask(t, "imp-5xx", row)); err != nil {
			t.Fatalf("row %d, redelivered: %v", row, err)
		}
		if r := e.result(t, "imp-5xx", row); r.Outcome != importer.Succeeded || !strings.HasPrefix(r.RecordID, "res_") {
			t.Errorf("row %d = %+v, want the resident adopted", row, r)
		}
	}
	st := sb.Stats()
	if st.Creates != rows || st.ResidentsCreated != rows || st.Requests["list_residents"] != rows {
		t.Errorf("sandbox: %d creates, %d residents, %d lookups; want %d of each", st.Creates, st.ResidentsCreated, st.Requests["list_residents"], rows)
	}
}

// A lost answer's resident is searched for until the vendor's cache lag
// has passed: with a ten-minute lag, the default searches (seven minutes)
// grow until one comes after it, and the resident is adopted. For a PMS
// whose records show only after a sync, not finding it is no proof: the
// row ends in_doubt saying so, and nothing is sent twice.
func TestLostAnswerLookupsFollowTheCacheLag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		lag     importer.CacheLag
		want    importer.Outcome
		message string
	}{
		{name: "ten minutes", lag: importer.CacheLag{Default: 10 * time.Minute}, want: importer.Succeeded, message: "adopted"},
		{name: "until a sync", lag: importer.CacheLag{Default: importer.UntilSync}, want: importer.Failed, message: "only after its next sync, so that is no proof"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := sandbox.NewManualClock(time.Now())
			lat, _ := sandbox.ParseLatency("fixed:5s")
			sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, Now: clk.Now, CacheLag: tt.lag, Faults: sandbox.Faults{DropRate: 1}})
			api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
			e := envOn(t, redistestClient(t))
			h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{CacheLag: tt.lag})
			e.newImport(t, "imp-lag", 1, importer.Options{})
			task := submitTask(t, "imp-lag", 1)
			err := h.ProcessTask(ctx, task)
			sb.SetFaults(sandbox.Faults{})
			var searched time.Duration
			for tries := 0; err != nil; tries++ {
				if tries > 20 || jobs.IsFailure(err) {
					t.Fatalf("after %d searches: %v", tries, err)
				}
				wait := jobs.RetryDelay(0, err, task)
				searched += wait
				clk.Add(wait)
				err = h.ProcessTask(ctx, task)
			}
			r := e.result(t, "imp-lag", 1)
			if r.Outcome != tt.want || !strings.Contains(r.Error, tt.message) {
				t.Errorf("row = %+v; want %s, saying %q", r, tt.want, tt.message)
			}
			if tt.want == importer.Succeeded && searched < 10*time.Minute {
				t.Errorf("adopted after %v of searches, before the lag had passed", searched)
			}
			if st := sb.Stats(); st.Creates != 1 {
				t.Errorf("%d creates, want 1", st.Creates)
			}
		})
	}
}
