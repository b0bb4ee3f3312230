package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const apiKey = "jobs-test-key"

// countingReports counts report writes, and keeps the last missing list.
type countingReports struct {
	n       atomic.Int32
	missing atomic.Pointer[[]importer.ResidentRecord]
}

func (r *countingReports) WriteReport(ctx context.Context, imp importer.Import, missing []importer.ResidentRecord) (string, error) {
	r.n.Add(1)
	r.missing.Store(&missing)
	return "/dev/null", nil
}

func (r *countingReports) NewPlan(imp importer.Import) (jobs.PlanSink, error) {
	return &discardPlan{}, nil
}

// discardPlan counts a plan's rows and keeps none.
type discardPlan struct{ rows int }

func (p *discardPlan) Add(int, importer.Decision) error { p.rows++; return nil }
func (p *discardPlan) Commit() (string, error)          { return "plan.csv", nil }
func (p *discardPlan) Abort()                           {}

func (r *countingReports) Written(imp importer.Import) (string, bool) {
	return "/dev/null", r.n.Load() > 0
}

type env struct {
	rdb     *redis.Client
	store   *store.Store
	queue   *asynq.Client
	insp    *asynq.Inspector
	sandbox *sandbox.Server
	api     *propexo.Client
	clock   *sandbox.ManualClock
	reports *countingReports
	h       *jobs.Imports
}

func redistestClient(t testing.TB) *redis.Client { return redistest.Client(t) }

// envOn is an env with no sandbox, for tests that bring their own API.
func envOn(t testing.TB, rdb *redis.Client) *env {
	return &env{rdb: rdb, store: store.New(rdb), queue: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb), reports: &countingReports{}}
}

// newEnv wires the handlers to a real Redis and the sandbox over HTTP. With
// a nil clock the sandbox runs on real time.
func newEnv(t *testing.T, latency string, clk *sandbox.ManualClock) *env {
	t.Helper()
	rdb := redistestClient(t)
	lat, err := sandbox.ParseLatency(latency)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sandbox.Config{APIKey: apiKey, Latency: lat}
	if clk != nil {
		cfg.Now = clk.Now
	}
	sb, srv := sandboxtest.Serve(t, cfg)
	api, err := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{rdb: rdb, store: store.New(rdb), queue: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb),
		sandbox: sb, api: api, clock: clk, reports: &countingReports{}}
	e.h = jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: 200 * time.Millisecond, PollMax: time.Second})
	return e
}

// commands is the lifecycle as a command sees it: no API, the env's store,
// queue and reports.
func (e *env) commands() *jobs.Imports {
	return jobs.NewImports(nil, e.store, e.queue, e.reports, nil, jobs.Config{})
}

func (e *env) newImport(t testing.TB, id string, total int, opts importer.Options) importer.Import {
	t.Helper()
	opts, err := opts.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	imp, _, err := e.store.CreateImport(context.Background(), importer.Import{ID: id, File: "test.csv", Options: opts, CreatedAt: time.Now().UTC(), Total: -1})
	if err != nil {
		t.Fatal(err)
	}
	if total >= 0 {
		if _, err := e.store.SetTotal(context.Background(), id, total, importer.FileColumns{}); err != nil {
			t.Fatal(err)
		}
		imp.Total = total
	}
	return imp
}

func resident(n int) importer.Resident {
	return importer.Resident{IntegrationID: "int_rentmanager_demo", PropertyID: "prop_100", FirstName: "Resident", LastName: fmt.Sprintf("Number%d", n),
		Email1: fmt.Sprintf("r%d@example.com", n), RentPeriod: "MONTHLY", RentDueDay: 1}
}

func submitTask(t *testing.T, importID string, row int) *asynq.Task {
	t.Helper()
	task, _, err := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: importID, Row: row, Line: row + 1, Vendor: importer.VendorGeneric, Resident: resident(row)}, 3)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func (e *env) taskState(t *testing.T, queue, id string) string {
	t.Helper()
	info, err := e.insp.GetTaskInfo(queue, id)
	if err != nil {
		return "absent"
	}
	return info.State.String()
}

// waitQuiet waits until the work of the test's Redis has all run: no
// queue holds a task to run (pending, active, to retry, or scheduled within
// quietHorizon: a fallback check an hour away is not work the test waits
// for) and, for the sandboxes given, no webhook waits to be delivered. What
// a test counts after it is final: late or duplicated work has happened by
// then, where a sleep would only have given it a chance to. sb may be nil;
// queues, when given, are the only ones looked at (those the test serves).
func (e *env) waitQuiet(t *testing.T, within time.Duration, sb *sandbox.Server, queues ...string) {
	t.Helper()
	waitFor(t, within, "the work queued never all ran", func() bool {
		if sb != nil && sb.Stats().WebhooksOutstanding > 0 {
			return false
		}
		if len(queues) == 0 {
			var err error
			if queues, err = e.insp.Queues(); err != nil {
				return false
			}
		}
		for _, q := range queues {
			info, err := e.insp.GetQueueInfo(q)
			if err != nil || info.Pending+info.Active+info.Retry > 0 {
				return false
			}
			// The scheduled tasks come earliest first.
			first, err := e.insp.ListScheduledTasks(q, asynq.PageSize(1))
			if err != nil || len(first) > 0 && time.Until(first[0].NextProcessAt) < quietHorizon {
				return false
			}
		}
		return true
	})
}

// quietHorizon is how far ahead waitQuiet looks for scheduled work.
const quietHorizon = 30 * time.Second

// send marks a row as being sent, as a worker does before its write
// leaves (and then dies, in the tests that call it).
func (e *env) send(t *testing.T, importID string, row int) {
	t.Helper()
	if m, err := e.store.Move(context.Background(), importID, importer.Move{Row: row, To: importer.PhaseSending}); err != nil || !m.Moved {
		t.Fatalf("marking row %d of %s as sending: %+v, %v", row, importID, m, err)
	}
}

func (e *env) result(t *testing.T, importID string, row int) importer.RowResult {
	t.Helper()
	for r, err := range e.store.Rows(context.Background(), importID, row) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Result.Row == row {
			return r.Result
		}
	}
	t.Fatalf("row %d not found", row)
	return importer.RowResult{}
}

func TestTaskIDsAreDeterministic(t *testing.T) {
	t.Parallel()
	first, again := jobs.SubmitTaskID("imp-1", 7, 0), jobs.SubmitTaskID("imp-1", 7, 0)
	if first != again || first == jobs.SubmitTaskID("imp-1", 8, 0) {
		t.Error("submit task ids are not one per row")
	}
	if jobs.SubmitTaskID("imp-1", 7, 0) == jobs.SubmitTaskID("imp-1", 7, 1) {
		t.Error("a retry round's submit shares the first round's task id")
	}
	if jobs.CheckTaskID("imp-1", 7, "job_a", 1) == jobs.CheckTaskID("imp-1", 7, "job_a", 2) {
		t.Error("two checks of one job share a task id")
	}
	if jobs.CheckTaskID("imp-1", 7, "job_a", 1) == jobs.CheckTaskID("imp-1", 7, "job_b", 1) {
		t.Error("the checks of a row's new job share the task ids of its old job's")
	}
	_, opts, _ := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: "imp-1", Row: 7}, 3)
	found := false
	for _, o := range opts {
		if o.Type() == asynq.TaskIDOpt && o.Value() == "submit:imp-1:7" {
			found = true
		}
	}
	if !found {
		t.Errorf("submit task options %v carry no task id submit:imp-1:7", opts)
	}
}

func TestRedeliveredSubmitDoesNotPostAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:1h", nil)
	e.newImport(t, "imp-redeliver", 1, importer.Options{})
	task := submitTask(t, "imp-redeliver", 1)

	for i := 0; i < 3; i++ {
		if err := e.h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	if got := e.sandbox.Stats().Creates; got != 1 {
		t.Errorf("the API saw %d creates for one row delivered three times, want 1", got)
	}
	st, _ := e.store.RowState(ctx, "imp-redeliver", 1)
	if st.JobID == "" || st.Check != 1 {
		t.Errorf("row state = %+v, want the job id stored with check 1", st)
	}
	if got := e.taskState(t, jobs.QueueCheck, jobs.CheckTaskID("imp-redeliver", 1, st.JobID, 1)); got != "scheduled" {
		t.Errorf("first status check is %s, want scheduled", got)
	}
}

func TestStatusCheckReenqueuesItselfUntilResolved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := sandbox.NewManualClock(time.Now())
	e := newEnv(t, "fixed:30s", clk)
	// Asynq schedules to the second: delays here are whole seconds.
	e.h = jobs.NewImports(e.api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: 2 * time.Second, PollMax: time.Minute})
	e.newImport(t, "imp-poll", 1, importer.Options{})
	if err := e.h.ProcessTask(ctx, submitTask(t, "imp-poll", 1)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.store.RowState(ctx, "imp-poll", 1)
	check := func(n int) *asynq.Task {
		task, _, err := jobs.NewCheckTask(jobs.CheckPayload{ImportID: "imp-poll", Row: 1, JobID: st.JobID, Check: n, Deadline: time.Now().Add(time.Hour)}, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		return task
	}

	var delays []time.Duration
	for n := 1; n <= 3; n++ {
		if err := e.h.ProcessTask(ctx, check(n)); err != nil {
			t.Fatalf("check %d: %v", n, err)
		}
		next := jobs.CheckTaskID("imp-poll", 1, st.JobID, n+1)
		if got := e.taskState(t, jobs.QueueCheck, next); got != "scheduled" {
			t.Fatalf("after PENDING check %d, task %s is %s, want scheduled", n, next, got)
		}
		info, _ := e.insp.GetTaskInfo(jobs.QueueCheck, next)
		wait := time.Until(info.NextProcessAt)
		if wait < time.Second {
			t.Errorf("check %d is due in %v: it must be delayed, not run at once", n+1, wait)
		}
		delays = append(delays, wait)
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] <= delays[i-1] {
			t.Errorf("delays %v do not grow", delays)
		}
	}
	reads := e.sandbox.Stats().Requests["write_status"]

	// A redelivered old check changes nothing and costs no request.
	if err := e.h.ProcessTask(ctx, check(3)); err != nil {
		t.Fatal(err)
	}
	if err := e.h.ProcessTask(ctx, check(1)); err != nil {
		t.Fatal(err)
	}
	if got := e.sandbox.Stats().Requests["write_status"]; got != reads {
		t.Errorf("redelivered checks made %d status reads, want 0", got-reads)
	}

	clk.Add(time.Minute)
	if err := e.h.ProcessTask(ctx, check(4)); err != nil {
		t.Fatal(err)
	}
	r := e.result(t, "imp-poll", 1)
	if r.Outcome != importer.Succeeded || r.JobID != st.JobID || !strings.HasPrefix(r.RecordID, "res_") {
		t.Errorf("result = %+v, want succeeded with the job and record ids", r)
	}
	if got := e.taskState(t, jobs.QueueCheck, jobs.CheckTaskID("imp-poll", 1, st.JobID, 5)); got != "absent" {
		t.Errorf("a check was scheduled after the write resolved (%s)", got)
	}
	if e.reports.n.Load() != 0 {
		t.Error("the handler wrote the report itself; it must enqueue the finalize")
	}
	if got := e.taskState(t, jobs.QueueFinalize, jobs.FinalizeTaskID("imp-poll", 0)); got != "pending" {
		t.Errorf("finalize is %s after the last row resolved, want pending", got)
	}
}

func TestDeadlineTimesTheRowOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:1h", nil)
	e.newImport(t, "imp-deadline", 1, importer.Options{})
	if err := e.h.ProcessTask(ctx, submitTask(t, "imp-deadline", 1)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.store.RowState(ctx, "imp-deadline", 1)
	task, _, _ := jobs.NewCheckTask(jobs.CheckPayload{ImportID: "imp-deadline", Row: 1, JobID: st.JobID, Check: 1, Deadline: time.Now().Add(-time.Second)}, 0, 3)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	r := e.result(t, "imp-deadline", 1)
	if r.Outcome != importer.TimedOut || r.JobID != st.JobID || r.ErrorCode != importer.CodeTimedOut {
		t.Errorf("result = %+v, want timed_out with the job id kept", r)
	}

	// Before the deadline, the last check is scheduled no later than just
	// past it.
	e.newImport(t, "imp-deadline-2", 1, importer.Options{})
	task2 := submitTask(t, "imp-deadline-2", 1)
	if err := e.h.ProcessTask(ctx, task2); err != nil {
		t.Fatal(err)
	}
	st, _ = e.store.RowState(ctx, "imp-deadline-2", 1)
	task, _, _ = jobs.NewCheckTask(jobs.CheckPayload{ImportID: "imp-deadline-2", Row: 1, JobID: st.JobID, Check: 9, Deadline: time.Now().Add(300 * time.Millisecond)}, 0, 3)
	following := []importer.Phase{importer.PhaseFollowing}
	e.store.Move(ctx, "imp-deadline-2", importer.Move{Row: 1, From: following, FromJob: st.JobID, FromCheck: 1, To: importer.PhaseFollowing, Job: st.JobID, Check: 9})
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	info, err := e.insp.GetTaskInfo(jobs.QueueCheck, jobs.CheckTaskID("imp-deadline-2", 1, st.JobID, 10))
	if err != nil {
		t.Fatal(err)
	}
	if wait := time.Until(info.NextProcessAt); wait > 2*time.Second {
		t.Errorf("the check after a 1s-capped delay is due in %v; it must not overshoot the deadline by more than a second", wait)
	}
}

// A write sent after its import's deadline has passed (its workers were
// down, say) is followed for --deadline after it was sent, like any other:
// it is not given up as timed_out at its first look, while still PENDING.
func TestAWriteSentLateIsFollowedLikeAnyOther(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:300ms", nil)
	e.newImport(t, "imp-late", 1, importer.Options{Deadline: 2 * time.Second})
	time.Sleep(2100 * time.Millisecond) // the import's deadline passes before the row is sent
	sent := time.Now()
	if err := e.h.ProcessTask(ctx, submitTask(t, "imp-late", 1)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.store.RowState(ctx, "imp-late", 1)
	info, err := e.insp.GetTaskInfo(jobs.QueueCheck, jobs.CheckTaskID("imp-late", 1, st.JobID, 1))
	if err != nil {
		t.Fatal(err)
	}
	var p jobs.CheckPayload
	if err := json.Unmarshal(info.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Deadline.After(sent.Add(time.Second)) {
		t.Errorf("the late write's check gives it up at %v, %v after it was sent; want --deadline (2s) after", p.Deadline.Format(time.RFC3339Nano), p.Deadline.Sub(sent))
	}
	// Follow the chain as the workers would: a check that comes before the
	// sandbox's 300 ms are up finds the job PENDING and schedules the next.
	for n := 1; n <= 4 && e.result(t, "imp-late", 1).Outcome == ""; n++ {
		info, err := e.insp.GetTaskInfo(jobs.QueueCheck, jobs.CheckTaskID("imp-late", 1, st.JobID, n))
		if err != nil {
			t.Fatalf("check %d: %v", n, err)
		}
		time.Sleep(time.Until(info.NextProcessAt))
		if err := e.h.ProcessTask(ctx, asynq.NewTask(info.Type, info.Payload)); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.result(t, "imp-late", 1); r.Outcome != importer.Succeeded {
		t.Errorf("result = %+v, want succeeded: the write resolved 300ms after it was sent", r)
	}
}

func TestRejectedCreateFailsTheRowAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:1h", nil)
	e.newImport(t, "imp-400", 1, importer.Options{})
	r := resident(1)
	r.LastName = ""
	task, _, _ := jobs.NewSubmitTask(jobs.SubmitPayload{ImportID: "imp-400", Row: 1, Vendor: importer.VendorGeneric, Resident: r}, 3)
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("a 400 must not be retried: %v", err)
	}
	got := e.result(t, "imp-400", 1)
	if got.Outcome != importer.Failed || got.ErrorCode != "invalid_request" || !strings.Contains(got.Error, "last_name: Required") {
		t.Errorf("result = %+v", got)
	}
}

func TestUnauthorizedStopsTheImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:1h", nil)
	e.newImport(t, "imp-401", 2, importer.Options{})
	bad, _ := propexo.New(propexo.Config{BaseURL: e.api.BaseURL(), APIKey: "wrong"})
	h := jobs.NewImports(bad, e.store, e.queue, e.reports, nil, jobs.Config{})
	for row := 1; row <= 2; row++ {
		if err := h.ProcessTask(ctx, submitTask(t, "imp-401", row)); err != nil {
			t.Fatalf("row %d: %v", row, err)
		}
	}
	imp, _ := e.store.Import(ctx, "imp-401")
	if !strings.Contains(imp.Stopped, "rejected the credentials (401") {
		t.Errorf("import stopped = %q", imp.Stopped)
	}
	p, _ := e.store.Progress(ctx, "imp-401")
	if p.Resolved != 0 {
		t.Errorf("%d rows failed; an auth error stops the import instead of failing rows", p.Resolved)
	}
	if got := e.sandbox.Stats().Unauthorized; got != 1 {
		t.Errorf("%d requests were sent with the bad key, want 1: the second row must not try", got)
	}
}

func TestInDoubtRowIsLookedUpNotResent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := sandbox.NewManualClock(time.Now())
	e := newEnv(t, "fixed:1s", clk)
	e.newImport(t, "imp-doubt", 2, importer.Options{})

	// Row 1 reached the API (its resident exists) but the worker died
	// before it stored the job id.
	if _, err := e.api.CreateResident(ctx, importer.VendorGeneric, resident(1)); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	e.send(t, "imp-doubt", 1)
	// Row 2 was being sent too, and never arrived.
	e.send(t, "imp-doubt", 2)
	creates := e.sandbox.Stats().Creates

	if err := e.h.ProcessTask(ctx, submitTask(t, "imp-doubt", 1)); err != nil {
		t.Fatal(err)
	}
	// Row 2 is looked up again after each wait; never found, it fails as
	// in_doubt after the last.
	waits := 0
	for ; ; waits++ {
		err := e.h.ProcessTask(ctx, submitTask(t, "imp-doubt", 2))
		if err == nil {
			break
		}
		if jobs.IsFailure(err) || waits > 10 {
			t.Fatalf("lookup %d: %v", waits+1, err)
		}
	}
	if waits != 4 {
		t.Errorf("row 2 was looked up %d times, want 5 (4 waits)", waits+1)
	}
	if got := e.sandbox.Stats().Creates - creates; got != 0 {
		t.Errorf("%d creates were sent again for rows in doubt, want 0", got)
	}
	if r := e.result(t, "imp-doubt", 1); r.Outcome != importer.Succeeded || !strings.HasPrefix(r.RecordID, "res_") {
		t.Errorf("row 1 = %+v, want the existing resident adopted", r)
	}
	if r := e.result(t, "imp-doubt", 2); r.Outcome != importer.Failed || r.ErrorCode != importer.CodeInDoubt || !strings.Contains(r.Error, "r2@example.com") {
		t.Errorf("row 2 = %+v, want failed in_doubt naming the resident", r)
	}
}

// Many workers, redeliveries and a split run twice: every row ends with one
// outcome, the API sees one create per row, and one report is written.
func TestPipelineFinalizesOnceUnderConcurrentWorkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "uniform:50ms-400ms", nil)
	const rows = 40
	imp := e.newImport(t, "imp-many", -1, importer.Options{})

	var servers []*asynq.Server
	for i := 0; i < 3; i++ {
		mux := asynq.NewServeMux()
		e.h.Register(mux)
		cfg := jobs.ServerConfig(8, nil)
		cfg.LogLevel = asynq.ErrorLevel
		srv := asynq.NewServerFromRedisClient(e.rdb, cfg)
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		servers = append(servers, srv)
	}
	defer func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}()

	for pass := 0; pass < 2; pass++ {
		res, err := e.commands().Split(ctx, imp, &fakeRows{n: rows})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != rows {
			t.Fatalf("split pass %d: total %d", pass, res.Total)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, _ := e.store.Import(ctx, "imp-many")
		if got.Finished() {
			break
		}
		if time.Now().After(deadline) {
			p, _ := e.store.Progress(ctx, "imp-many")
			t.Fatalf("not finished after 60s: %+v", p)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p, _ := e.store.Progress(ctx, "imp-many")
	if p.Resolved != rows || p.Counts[importer.Succeeded] != rows {
		t.Errorf("progress = %+v, want %d succeeded", p, rows)
	}
	if got := e.sandbox.Stats(); got.Creates != rows {
		t.Errorf("the API saw %d creates for %d rows", got.Creates, rows)
	}
	for id, n := range e.sandbox.Stats().CreatesByIdentity {
		if n != 1 {
			t.Errorf("%s created %d times", id, n)
		}
	}
	// Finalize once more from a late, redelivered resolve: still one report.
	if err := jobs.EnqueueFinalize(ctx, e.queue, "imp-many", 0); err != nil {
		t.Fatal(err)
	}
	e.waitQuiet(t, 10*time.Second, nil)
	if got := e.reports.n.Load(); got != 1 {
		t.Errorf("the report was written %d times, want 1", got)
	}
}

// fakeRows yields n valid rows.
type fakeRows struct {
	n, i int
	// edit, when set, changes row n's resident.
	edit func(n int, r *importer.Resident)
}

func (f *fakeRows) Next() (importer.Row, error) {
	if f.i == f.n {
		return importer.Row{}, io.EOF
	}
	f.i++
	r := resident(f.i)
	if f.edit != nil {
		f.edit(f.i, &r)
	}
	values := []string{r.IntegrationID, r.PropertyID, r.FirstName, r.LastName, r.Email1, r.RentPeriod, "1"}
	row := importer.Row{Number: f.i, Line: f.i + 1, Values: map[string]string{}}
	for i, name := range fakeHeader {
		row.Values[name] = values[i]
		row.Columns = append(row.Columns, importer.Column{Name: name, Value: values[i]})
	}
	return row, nil
}

var fakeHeader = []string{"integration_id", "property_id", "first_name", "last_name", "email_1", "rent_period", "rent_due_day"}

func (f *fakeRows) Columns() []string        { return fakeHeader }
func (f *fakeRows) UnknownColumns() []string { return nil }
func (f *fakeRows) IgnoredColumns() []string { return nil }
func (f *fakeRows) CheckColumns() error      { return nil }
