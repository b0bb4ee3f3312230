package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/jobs"
)

// Redis lost an import while its tasks were still on a queue (a worker's
// redelivery, another Redis's queue): they send nothing, since nothing could
// record what became of the rows.
func TestTasksOfAGoneImportSendNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:0s", nil)
	e.newImport(t, "imp-gone", 2, importer.Options{})
	if err := e.h.ProcessTask(ctx, submitTask(t, "imp-gone", 1)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.store.RowState(ctx, "imp-gone", 1)
	if err := e.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.h.ProcessTask(ctx, submitTask(t, "imp-gone", 2)); err != nil {
		t.Fatal(err)
	}
	task, _, _ := jobs.NewCheckTask(jobs.CheckPayload{ImportID: "imp-gone", Row: 1, JobID: st.JobID, Check: 1, Deadline: time.Now().Add(time.Hour)}, 0, 3)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if got := e.sandbox.Stats(); got.Creates != 1 || got.Requests["write_status"] != 0 {
		t.Errorf("after the import was lost: %d creates, %d status reads; want 1 and 0", got.Creates, got.Requests["write_status"])
	}
}

// An import Redis lost mid-way is run again as a recovery: every row is
// looked up before it is sent, once writes sent before the loss had time to
// resolve. Rows sent before the loss are adopted, the others sent: each
// resident exists once.
func TestRecoveredImportLooksUpBeforeSending(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lat, _ := sandbox.ParseLatency("fixed:0s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second})
	const rows, sentBefore = 10, 6
	// Before the loss: the first rows were sent and written.
	for n := 1; n <= sentBefore; n++ {
		if _, err := api.CreateResident(ctx, importer.VendorGeneric, resident(n)); err != nil {
			t.Fatal(err)
		}
	}
	lookupFrom := time.Now().Add(time.Second)
	imp, _, err := e.store.CreateImport(ctx, importer.Import{ID: "imp-recovered", File: "test.csv", CreatedAt: time.Now().UTC(), Total: -1,
		Options:  importer.Options{Vendor: importer.VendorGeneric, Deadline: time.Hour},
		Recovery: &importer.Recovery{FirstStartedAt: time.Now().Add(-time.Hour), LookupFrom: lookupFrom}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e.rdb, h, 1, 10)
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, e.store, "imp-recovered", 30*time.Second)
	st := sb.Stats()
	if st.Creates != rows {
		t.Errorf("%d creates in all, want %d: one per resident", st.Creates, rows)
	}
	for who, n := range st.ResidentsByIdentity {
		if n != 1 {
			t.Errorf("%s: %d residents", who, n)
		}
	}
	if st.Requests["list_residents"] != rows {
		t.Errorf("%d lookups, want one per row (%d)", st.Requests["list_residents"], rows)
	}
	for n := 1; n <= rows; n++ {
		r := e.result(t, "imp-recovered", n)
		if r.Outcome != importer.Succeeded || r.RecordID == "" {
			t.Errorf("row %d = %+v, want succeeded", n, r)
		}
		if adopted := strings.Contains(r.Error, "adopted"); adopted != (n <= sentBefore) {
			t.Errorf("row %d adopted: %v, want %v", n, adopted, n <= sentBefore)
		}
		if r.At.Before(lookupFrom) {
			t.Errorf("row %d resolved at %v, before the recovery's lookups were due (%v)", n, r.At, lookupFrom)
		}
	}
}

// A recovery for a PMS whose records show only after a sync cannot trust
// a lookup that finds nothing: the rows sent before the loss are not shown
// yet. Every row not found ends in_doubt, saying so; nothing is sent twice.
func TestRecoveryOfAPMSShownAfterASyncSendsNothingBlind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lat, _ := sandbox.ParseLatency("fixed:0s")
	untilSync := importer.CacheLag{Default: importer.UntilSync}
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, CacheLag: untilSync})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second, CacheLag: untilSync})
	const rows, sentBefore = 6, 3
	for n := 1; n <= sentBefore; n++ {
		if _, err := api.CreateResident(ctx, importer.VendorGeneric, resident(n)); err != nil {
			t.Fatal(err)
		}
	}
	imp, _, err := e.store.CreateImport(ctx, importer.Import{ID: "imp-recovered-sync", File: "test.csv", CreatedAt: time.Now().UTC(), Total: -1,
		Options:  importer.Options{Vendor: importer.VendorGeneric, Deadline: time.Hour},
		Recovery: &importer.Recovery{FirstStartedAt: time.Now().Add(-time.Hour), LookupFrom: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, e.rdb, h, 1, 10)
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, e.store, "imp-recovered-sync", 30*time.Second)
	if st := sb.Stats(); st.Creates != sentBefore {
		t.Errorf("%d creates, want the %d sent before the loss and none blind", st.Creates, sentBefore)
	}
	for n := 1; n <= rows; n++ {
		r := e.result(t, "imp-recovered-sync", n)
		if r.Outcome != importer.Failed || r.ErrorCode != importer.CodeInDoubt || !strings.Contains(r.Error, "only after its next sync") {
			t.Errorf("row %d = %+v, want in_doubt, saying why", n, r)
		}
	}
}
