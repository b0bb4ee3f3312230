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

// failedImport imports rows through workers while the PMS fails every
// write, so that each row ends failed with its job id; then the PMS is
// back.
func failedImport(t *testing.T, id string, rows int) (*env, *sandbox.Server) {
	t.Helper()
	ctx := context.Background()
	e, sb := failingPMS(t)
	imp := e.newImport(t, id, -1, importer.Options{})
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, e.store, id, 30*time.Second)
	if p, _ := e.store.Progress(ctx, id); p.Counts[importer.Failed] != rows {
		t.Fatalf("progress %+v, want every row failed", p)
	}
	zero := 0.0
	sb.SetFaults(sandbox.Faults{FailureRate: &zero})
	return e, sb
}

// failingPMS is an env whose workers write to a PMS that fails every
// write, until its faults are set otherwise.
func failingPMS(t *testing.T) (*env, *sandbox.Server) {
	t.Helper()
	lat, _ := sandbox.ParseLatency("fixed:0s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, FailureRate: 1})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	e.sandbox = sb
	e.h = jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second})
	serve(t, e.rdb, e.h, 1, 10)
	return e, sb
}

// 'importer retry' interrupted right after it took the rows back (Ctrl-C,
// SIGKILL), then the obvious next command — the retry again, or the run of
// the file — finishes the same round: each failed write is retried through
// retry-write once, no create is sent again, and the report tells the
// truth.
func TestInterruptedRetryResumesWithoutCreatingTwice(t *testing.T) {
	t.Parallel()
	const rows = 12
	for _, next := range []string{"retry again", "run the file again"} {
		t.Run(next, func(t *testing.T) {
			ctx := context.Background()
			e, sb := failedImport(t, "imp-retry", rows)
			creates := sb.Stats().Creates

			// The interrupted retry: the rows are taken back, and the
			// process dies before anything else.
			var plans []importer.RetryPlan
			for r, err := range e.store.Rows(ctx, "imp-retry", rows) {
				if err != nil {
					t.Fatal(err)
				}
				plan, ok := jobs.PlanRetry(r.Result, jobs.RetryOptions{})
				if !ok || plan.Action != importer.RetryWrite {
					t.Fatalf("row %d: plan %+v, %v; want a retry-write", r.Result.Row, plan, ok)
				}
				plans = append(plans, plan)
			}
			if got, err := e.store.Reopen(ctx, "imp-retry", plans); err != nil || len(got) != rows {
				t.Fatalf("reopen: %d rows, %v", len(got), err)
			}

			switch next {
			case "retry again":
				res, err := e.commands().Retry(ctx, "imp-retry", jobs.RetryOptions{})
				if err != nil || !res.Resumed {
					t.Fatalf("retry again: %+v, %v; want the round resumed", res, err)
				}
			default:
				imp, _ := e.store.Import(ctx, "imp-retry")
				if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
					t.Fatal(err)
				}
			}
			waitFinished(t, e.store, "imp-retry", 30*time.Second)
			st := sb.Stats()
			if got := st.Creates - creates; got != 0 {
				t.Errorf("%d creates were sent again", got)
			}
			if st.Requests["retry_write"] != rows {
				t.Errorf("%d retry-writes, want one per row (%d)", st.Requests["retry_write"], rows)
			}
			for who, n := range st.ResidentsByIdentity {
				if n != 1 {
					t.Errorf("%s: %d residents", who, n)
				}
			}
			if p, _ := e.store.Progress(ctx, "imp-retry"); p.Counts[importer.Succeeded] != rows || p.Resolved != rows {
				t.Errorf("progress %+v, want every row succeeded", p)
			}
			imp, _ := e.store.Import(ctx, "imp-retry")
			if imp.Round != 1 {
				t.Errorf("round %d, want 1", imp.Round)
			}
		})
	}
}

// A webhook of a row's old job (Propexo retries deliveries for hours)
// arriving while the row follows the job of its retry changes nothing: the
// row ends as its new job does.
func TestStaleWebhookAfterARetryIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lat, _ := sandbox.ParseLatency("fixed:0s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, FailureRate: 1})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollFallback: time.Hour})
	e.newImport(t, "imp-stale", 1, importer.Options{})
	if err := h.ProcessTask(ctx, submitTask(t, "imp-stale", 1)); err != nil {
		t.Fatal(err)
	}
	old, _ := e.store.RowState(ctx, "imp-stale", 1)
	failure := importer.WriteEvent{JobID: old.JobID, State: importer.WriteFailure, Errors: []string{"The PMS is down"}}
	if err := h.ApplyEvent(ctx, failure); err != nil {
		t.Fatal(err)
	}
	if r := e.result(t, "imp-stale", 1); r.Outcome != importer.Failed || r.JobID != old.JobID {
		t.Fatalf("row = %+v, want failed by its job", r)
	}
	if err := e.store.Finish(ctx, "imp-stale", time.Now()); err != nil {
		t.Fatal(err)
	}
	zero := 0.0
	sb.SetFaults(sandbox.Faults{FailureRate: &zero})
	if res, err := e.commands().Retry(ctx, "imp-stale", jobs.RetryOptions{}); err != nil || res.Reopened != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	task, _, _ := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: "imp-stale", Row: 1, Vendor: importer.VendorGeneric, Resident: resident(1), Round: 1}, 3)
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	fresh, _ := e.store.RowState(ctx, "imp-stale", 1)
	if fresh.JobID == "" || fresh.JobID == old.JobID {
		t.Fatalf("after the retry-write the row follows %q, want a new job", fresh.JobID)
	}

	// The old job's failure, delivered again while the new job runs.
	if err := h.ApplyEvent(ctx, failure); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.store.RowState(ctx, "imp-stale", 1); st.Resolved || st.JobID != fresh.JobID {
		t.Fatalf("a stale webhook changed the row: %+v", st)
	}
	if err := h.ApplyEvent(ctx, importer.WriteEvent{JobID: fresh.JobID, State: importer.WriteSuccess, RecordID: "res_new"}); err != nil {
		t.Fatal(err)
	}
	// And once more after the row succeeded.
	if err := h.ApplyEvent(ctx, failure); err != nil {
		t.Fatal(err)
	}
	if r := e.result(t, "imp-stale", 1); r.Outcome != importer.Succeeded || r.JobID != fresh.JobID || r.RecordID != "res_new" {
		t.Errorf("row = %+v, want succeeded by its new job", r)
	}
}

// 'importer retry --in-doubt' (once the PMS has synced) looks each row in
// doubt up again: a resident that exists is adopted, one that does not is
// sent. Without --in-doubt they are left alone.
func TestRetryInDoubtLooksUpFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lat, _ := sandbox.ParseLatency("fixed:0s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second})
	imp := e.newImport(t, "imp-doubt-retry", -1, importer.Options{})
	// Row 1's create had reached the API; row 2's had not. Both ended in
	// doubt.
	if _, err := api.CreateResident(ctx, importer.VendorGeneric, resident(1)); err != nil {
		t.Fatal(err)
	}
	rows := &fakeRows{n: 2}
	var stored []importer.Row
	for {
		r, err := rows.Next()
		if err != nil {
			break
		}
		stored = append(stored, r)
	}
	header, _ := e.store.InputHeader(ctx, imp.ID, fakeHeader)
	doubt := func(n int) importer.RowResult {
		return importer.RowResult{Row: n, Line: n + 1, Outcome: importer.Failed, ErrorCode: importer.CodeInDoubt, Error: "may exist"}
	}
	if err := e.store.SaveInput(ctx, imp.ID, header, stored, []importer.RowResult{doubt(1), doubt(2)}); err != nil {
		t.Fatal(err)
	}
	e.store.SetTotal(ctx, imp.ID, 2, importer.FileColumns{Names: fakeHeader})
	e.store.Finish(ctx, imp.ID, time.Now())
	if res, err := e.commands().Retry(ctx, imp.ID, jobs.RetryOptions{}); err != nil || res.Reopened != 0 {
		t.Fatalf("retry without --in-doubt: %+v %v; want rows in doubt left alone", res, err)
	}
	serve(t, e.rdb, h, 1, 4)
	if res, err := e.commands().Retry(ctx, imp.ID, jobs.RetryOptions{InDoubt: true}); err != nil || res.Reopened != 2 {
		t.Fatalf("retry --in-doubt: %+v %v", res, err)
	}
	waitFinished(t, e.store, imp.ID, 20*time.Second)
	if r := e.result(t, imp.ID, 1); r.Outcome != importer.Succeeded || !strings.Contains(r.Error, "adopted") {
		t.Errorf("row 1 = %+v, want its existing resident adopted", r)
	}
	if r := e.result(t, imp.ID, 2); r.Outcome != importer.Succeeded || r.JobID == "" {
		t.Errorf("row 2 = %+v, want it sent", r)
	}
	if st := sb.Stats(); st.Creates != 2 || st.ResidentsCreated != 2 {
		t.Errorf("%d creates, %d residents; want 2 of each", st.Creates, st.ResidentsCreated)
	}
}

// A retry-write the API refuses ends the row at once, its failed job kept:
// the row is not left waiting, nor offered again in failed.csv.
func TestRefusedRetryWriteEndsTheRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lat, _ := sandbox.ParseLatency("fixed:1h") // the job is still PENDING: the API will not retry it
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{})
	e.newImport(t, "imp-refused", 1, importer.Options{})
	if err := h.ProcessTask(ctx, submitTask(t, "imp-refused", 1)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.store.RowState(ctx, "imp-refused", 1)
	failed := importer.RowResult{Row: 1, Outcome: importer.Failed, JobID: st.JobID, ErrorCode: importer.CodeWriteFailed, Error: "down"}
	if _, err := e.store.Move(ctx, "imp-refused", importer.Move{Row: 1, FromJob: st.JobID, To: importer.PhaseResolved, Result: failed}); err != nil {
		t.Fatal(err)
	}
	e.store.Finish(ctx, "imp-refused", time.Now())
	if res, err := e.commands().Retry(ctx, "imp-refused", jobs.RetryOptions{}); err != nil || res.Reopened != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	task, _, _ := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: "imp-refused", Row: 1, Vendor: importer.VendorGeneric, Resident: resident(1), Round: 1}, 3)
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	r := e.result(t, "imp-refused", 1)
	if r.Outcome != importer.Failed || r.JobID != st.JobID || !strings.Contains(r.Error, "would not retry") || r.SafeToResend() {
		t.Errorf("row = %+v, want failed with its job kept, not offered again", r)
	}
	if sb.Stats().Creates != 1 {
		t.Error("a create was sent for a row whose retry-write was refused")
	}
}

// A round that ends with failures a retry can mend (the PMS in
// maintenance) is retried by itself RetryTransient later, when the import
// asks for it (a schedule's retry_transient); once the rows succeed,
// nothing more is queued (issue 22).
func TestTransientFailuresAreRetriedByThemselves(t *testing.T) {
	t.Parallel()
	const rows = 6
	ctx := context.Background()
	e, sb := failingPMS(t)
	opts, _ := importer.Options{}.Normalize()
	imp, _, err := e.store.CreateImport(ctx, importer.Import{ID: "imp-transient", File: "test.csv", Options: opts, CreatedAt: time.Now().UTC(), Total: -1,
		RetryTransient: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, e.store, "imp-transient", 30*time.Second)
	zero := 0.0
	sb.SetFaults(sandbox.Faults{FailureRate: &zero}) // the maintenance is over
	if p, _ := e.store.Progress(ctx, "imp-transient"); p.Counts[importer.Failed] != rows {
		t.Fatalf("first round: %+v, want every row failed", p)
	}
	var p importer.Progress
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		imp, _ = e.store.Import(ctx, "imp-transient")
		if p, _ = e.store.Progress(ctx, "imp-transient"); imp.Round == 1 && imp.Finished() {
			break
		}
	}
	if imp.Round != 1 || p.Counts[importer.Succeeded] != rows {
		t.Fatalf("after the retry's time: round %d, %+v; want round 1 with every row succeeded", imp.Round, p)
	}
	if got := sb.Stats().Requests["retry_write"]; got != rows {
		t.Errorf("%d retry-writes, want one per row", got)
	}
	tasks, _ := e.insp.ListScheduledTasks(jobs.QueueFinalize)
	for _, task := range tasks {
		if task.Type == jobs.TypeRetryTransient {
			t.Errorf("a retry is queued although every row succeeded: %s", task.ID)
		}
	}
}
