package jobs_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/internal/webhook"
	"github.com/propexo-importer/importer/jobs"
)

const whSecret = "whsec"

// webhookImport imports rows with webhooks on: the sandbox posts its
// deliveries (duplicated and out of order) to a receiver wired to the
// handlers, and polling is a fallback an hour away.
func webhookImport(t *testing.T, id string, rows int, cfg sandbox.Config) (*env, *sandbox.Server) {
	t.Helper()
	return webhookImportPolling(t, id, rows, cfg, time.Hour)
}

// webhookImportPolling is webhookImport with the fallback poll after
// fallback.
func webhookImportPolling(t *testing.T, id string, rows int, cfg sandbox.Config, fallback time.Duration) (*env, *sandbox.Server) {
	t.Helper()
	ctx := context.Background()
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(nil, e.store, e.queue, e.reports, nil, jobs.Config{PollFallback: time.Hour})
	rc, err := webhook.NewReceiver(whSecret, h.ApplyEvent, nil)
	if err != nil {
		t.Fatal(err)
	}
	hooks := httptest.NewServer(rc)
	t.Cleanup(hooks.Close)

	cfg.APIKey, cfg.RateLimit = apiKey, -1
	cfg.Latency, _ = sandbox.ParseLatency("uniform:50ms-300ms")
	cfg.Webhooks = sandbox.WebhookConfig{URL: hooks.URL, Secret: whSecret, DuplicateRate: 0.5, Jitter: 300 * time.Millisecond}
	sb, srv := sandboxtest.Serve(t, cfg)
	sb.Start()
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e.h = jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollFallback: fallback})

	imp := e.newImport(t, id, -1, importer.Options{})
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	mux := asynq.NewServeMux()
	e.h.Register(mux)
	scfg := jobs.ServerConfig(8, nil)
	scfg.LogLevel = asynq.FatalLevel
	server := asynq.NewServerFromRedisClient(e.rdb, scfg)
	if err := server.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Shutdown)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, _ := e.store.Import(ctx, id); got.Finished() {
			break
		}
		if time.Now().After(deadline) {
			p, _ := e.store.Progress(ctx, id)
			t.Fatalf("not finished after 30s: %+v", p)
		}
	}
	e.waitQuiet(t, 30*time.Second, sb) // late duplicates have arrived
	return e, sb
}

func TestWebhooksResolveRowsWithoutPolling(t *testing.T) {
	t.Parallel()
	const rows = 30
	e, sb := webhookImport(t, "imp-hooks", rows, sandbox.Config{FailureRate: 0.2, Seed: 5})
	st := sb.Stats()
	if st.Requests["write_status"] != 0 {
		t.Errorf("%d status reads with webhooks on, want 0", st.Requests["write_status"])
	}
	if st.Webhooks["duplicated"] == 0 {
		t.Error("the sandbox sent no duplicates: the test proves nothing about them")
	}
	p, _ := e.store.Progress(context.Background(), "imp-hooks")
	if p.Resolved != rows || p.Counts[importer.Succeeded]+p.Counts[importer.Failed] != rows || p.Counts[importer.Failed] == 0 {
		t.Errorf("progress = %+v", p)
	}
	if p.Counts[importer.Succeeded] != st.ResidentsCreated {
		t.Errorf("%d rows succeeded, the sandbox created %d residents", p.Counts[importer.Succeeded], st.ResidentsCreated)
	}
	if got := e.reports.n.Load(); got != 1 {
		t.Errorf("%d reports written, want 1", got)
	}
}

// Whether DATA_NEW's root_job_id is the write's job id is undocumented:
// the sandbox sends the write's, a sync job's, or no DATA_NEW at all. A
// DATA_NEW naming a sync job finds its write by the record's email, with no
// request; without DATA_NEW, the fallback poll ends every row. Every row
// ends as its write did in all three.
func TestDataNewVariants(t *testing.T) {
	t.Parallel()
	const rows = 20
	for _, tt := range []struct {
		variant      string
		fallback     time.Duration
		statusReads  bool
		wantWebhooks bool
	}{
		{variant: sandbox.DataNewWrite, fallback: time.Hour},
		{variant: sandbox.DataNewSync, fallback: time.Hour},
		{variant: sandbox.DataNewNone, fallback: time.Second, statusReads: true},
	} {
		t.Run(tt.variant, func(t *testing.T) {
			id := "imp-datanew-" + tt.variant
			e, sb := webhookImportPolling(t, id, rows, sandbox.Config{Seed: 3, Variants: sandbox.Variants{DataNew: tt.variant}}, tt.fallback)
			st := sb.Stats()
			if reads := st.Requests["write_status"]; (reads > 0) != tt.statusReads || reads > rows {
				t.Errorf("%d status reads for %d rows", reads, rows)
			}
			p, _ := e.store.Progress(context.Background(), id)
			if p.Counts[importer.Succeeded] != rows || st.ResidentsCreated != rows || st.Creates != rows {
				t.Errorf("progress %+v, sandbox %d creates, %d residents; want every row succeeded once", p.Counts, st.Creates, st.ResidentsCreated)
			}
			for r, err := range e.store.Rows(context.Background(), id, rows) {
				if err != nil || r.Result.RecordID == "" {
					t.Errorf("row %+v (%v): want its record id", r.Result, err)
				}
			}
		})
	}
}

// A partial write sends WRITE_OPERATION_FAILURE and DATA_NEW, in either
// order, sometimes twice: the row ends partial.
func TestOutOfOrderPartialEndsPartial(t *testing.T) {
	t.Parallel()
	const rows = 12
	e, _ := webhookImport(t, "imp-partial", rows, sandbox.Config{PartialRate: 1})
	ctx := context.Background()
	p, _ := e.store.Progress(ctx, "imp-partial")
	if p.Resolved != rows || p.Counts[importer.Partial] != rows || p.Counts[importer.Succeeded] != 0 {
		t.Errorf("progress = %+v, want every row partial", p)
	}
	for r, err := range e.store.Rows(ctx, "imp-partial", rows) {
		if err != nil || r.Result.Outcome != importer.Partial || r.Result.RecordID == "" || r.Result.Error == "" {
			t.Errorf("row %+v (%v)", r.Result, err)
		}
	}
	imp, _ := e.store.Import(ctx, "imp-partial")
	if !imp.Finished() {
		t.Error("an import reopened by a late partial was not finished again")
	}
}

// fixedJobAPI answers every create with the same job id, so a test can
// deliver that job's webhook before the create's answer is stored.
type fixedJobAPI struct{ importer.WriteAPI }

func (fixedJobAPI) CreateResident(context.Context, importer.Vendor, importer.Resident) (string, error) {
	return "job_early", nil
}

func TestWebhookBeforeTheJobIDIsStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(fixedJobAPI{}, e.store, e.queue, e.reports, nil, jobs.Config{PollFallback: time.Hour})
	e.newImport(t, "imp-early", 1, importer.Options{})
	if err := h.ApplyEvent(ctx, importer.WriteEvent{JobID: "job_early", State: importer.WriteSuccess, RecordID: "res_early"}); err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, submitTask(t, "imp-early", 1)); err != nil {
		t.Fatal(err)
	}
	r := e.result(t, "imp-early", 1)
	if r.Outcome != importer.Succeeded || r.RecordID != "res_early" || r.JobID != "job_early" {
		t.Errorf("result = %+v", r)
	}
	if got := e.taskState(t, jobs.QueueCheck, jobs.CheckTaskID("imp-early", 1, "job_early", 1)); got != "absent" {
		t.Errorf("a status check was scheduled for a row a webhook resolved (%s)", got)
	}
}
