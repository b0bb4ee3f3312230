// Package jobs is the home of an import's lifecycle. Imports owns it: it
// starts an import from a file (Inspect, then Start: the same code for
// 'importer run' and for scheduled inbox files), feeds its rows to the
// queue a window at a time, submits each write, follows its asynchronous
// job with delayed status checks, applies webhooks, and finishes, cancels,
// retries, reviews and deletes imports. The Asynq handlers (tasks.go), the
// webhook receiver, the dashboard's Cancel, the scheduler and every command
// of cmd/importer only decode their input and call it.
//
// Imports keeps its state behind one port, Store (store.go), and talks to
// the write API through importer.WriteAPI. Every task handler is safe to
// run twice: Asynq delivers tasks at least once.
//
// Words: a "task" is Asynq's unit of work; a "job" is always the API's
// asynchronous write job, which a row's status checks follow; a schedule's
// "entry" is a line of the schedules file (internal/schedule).
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/poll"
)

// Reports is where this process keeps reports: its own report folder
// (cmd's reportWriter is one).
type Reports interface {
	// WriteReport writes the import's report and returns its folder. A
	// sync's report lists, besides, the residents of its snapshot that no
	// row matched (missing; nil for a create-only import).
	WriteReport(ctx context.Context, imp importer.Import, missing []importer.ResidentRecord) (string, error)
	// Written returns the folder of the import's report and whether it
	// holds the report of the import's last round already.
	Written(imp importer.Import) (dir string, current bool)
	// NewPlan starts the plan.csv of an import: what its sync would do
	// with each row (written when a guard refuses the plan).
	NewPlan(imp importer.Import) (PlanSink, error)
}

// PlanSink receives a plan's decisions, row by row; *report.Plan is one.
type PlanSink interface {
	Add(row int, d importer.Decision) error
	// Commit finishes the plan and returns its file; Abort drops it.
	Commit() (string, error)
	Abort()
}

// Config tunes the lifecycle. The zero value of each field is its default.
type Config struct {
	// PollInitial is the delay before a write's first status check.
	// Default importer.DefaultPollInitial.
	PollInitial time.Duration
	// PollMax caps the growing delay between status checks. Default
	// importer.DefaultPollMax.
	PollMax time.Duration
	// MaxRetry is how often a task is retried after a 5xx or network error
	// before its row fails. Waiting for a rate limit does not count.
	// Default importer.DefaultMaxRetry.
	MaxRetry int
	// Planner, when set, decides when to read a write's status from what
	// earlier reads of the same integration found (*poll.Learner). Without
	// it, checks come PollInitial after the submit, then at doubling
	// delays.
	Planner Planner
	// PollFallback, when set, is the first check's delay for deployments
	// that receive webhooks: the webhook resolves the row, and polling is
	// only a slow fallback (doubling from there, up to PollMax). Only then
	// are jobs indexed for webhooks to find their rows.
	PollFallback time.Duration
	// Metrics, when set, counts rows and waits for Prometheus
	// (*metrics.Metrics). Default: none.
	Metrics Metrics
	// LookupWaits are the waits between the searches for a resident whose
	// create may have reached the API. Default DefaultLookupWaits.
	LookupWaits []time.Duration
	// Limiter paces the API requests of every worker; an error from Take
	// with a RetryIn() time.Duration method means "wait that long", and
	// the task is rescheduled without counting a failure. Default: none.
	Limiter Limiter
	// Window is how many rows of an import may be in flight at once: the
	// feed queues more as rows resolve. Default DefaultWindow.
	Window int
	// Ahead is how much of the rate limit's budget the imports keep queued
	// ahead of the workers, shared between them by weight (see Feed): a
	// new import's first rows wait at most that long behind the others'.
	// Default DefaultAhead. Without a Limiter, each import queues its
	// window.
	Ahead time.Duration
	// Ceilings cap each integration's writes in flight (sent and not
	// resolved), across every import and worker. Default: none.
	Ceilings Ceilings
	// LedgerRetention is how long the ledger remembers what the importer
	// wrote. Default importer.DefaultLedgerRetention.
	LedgerRetention time.Duration
	// CacheLag is how long after a write the API shows its record, per
	// vendor: until then a resident not found is no proof of absence, so
	// the searches for a lost answer and --verify's read-back last past
	// it. Default 0: shown at once, as the documented vendors' create
	// pages say.
	CacheLag importer.CacheLag
	// Sender delivers notifications (notify.Sender); a process without
	// one queues them for the workers.
	Sender Sender
	// Notify are this process's own notification targets, told about the
	// imports no schedule started (a worker's --notify).
	Notify []importer.NotifyTarget
	// DashboardURL, when set, is the dashboard's address: notifications
	// link to an import's page there.
	DashboardURL string
	// Sources is how remote inboxes are reached: the SSH keys and
	// known_hosts of sftp:// ones (buckets take their clouds' default
	// credentials).
	Sources fetch.Options
}

// Ceilings are the most writes each integration may have in flight: a PMS
// that slows down then holds that many PENDING writes, not every row of its
// imports, and the other integrations' writes are not crowded out.
type Ceilings struct {
	// Default applies to every integration when above 0 (the user's
	// --max-in-flight-per-integration).
	Default int
	// Published are the integrations' own max_job_concurrency, where the
	// API gives one: the ceiling of an integration Default does not set.
	Published map[string]int
}

// Of returns an integration's ceiling, 0 for none.
func (c Ceilings) Of(integrationID string) int {
	if c.Default > 0 {
		return c.Default
	}
	return c.Published[integrationID]
}

// Planner learns when writes resolve; *poll.Learner is one.
type Planner interface {
	// CheckDelays plans the first and second status checks of a write,
	// counted from the submit.
	CheckDelays(ctx context.Context, w poll.Writes) poll.Plan
	// Observe learns from status check number n, planned frugally or
	// not: was the write PENDING?
	Observe(ctx context.Context, w poll.Writes, n int, frugal, pending bool)
}

// Metrics observes what the lifecycle does; *metrics.Metrics is one.
type Metrics interface {
	// RowResolved counts a row's outcome, once per row.
	RowResolved(o importer.Outcome)
	// WriteResolved observes how long a write took from its submit to a
	// status check that found it resolved.
	WriteResolved(d time.Duration)
	// RateLimitWait counts a wait for the rate limit.
	RateLimitWait()
}

// Limiter hands out API requests; *ratelimit.Limiter is one.
type Limiter interface {
	Take(ctx context.Context, n int) error
	// PerSecond is the rate it allows now, for every worker together.
	PerSecond() float64
}

// WithDefaults returns the config with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.PollInitial <= 0 {
		c.PollInitial = importer.DefaultPollInitial
	}
	if c.PollMax <= 0 {
		c.PollMax = importer.DefaultPollMax
	}
	if c.PollMax < c.PollInitial {
		c.PollMax = c.PollInitial
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = importer.DefaultMaxRetry
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Ahead <= 0 {
		c.Ahead = DefaultAhead
	}
	if len(c.LookupWaits) == 0 {
		c.LookupWaits = DefaultLookupWaits
	}
	if c.LedgerRetention <= 0 {
		c.LedgerRetention = importer.DefaultLedgerRetention
	}
	return c
}

// Imports owns the lifecycle of imports and of their rows. Every entry
// point — a task, a webhook, a command, the dashboard — calls one of its
// operations; nothing outside it decides what becomes of an import.
//
// Its operations come in roles, each a type of its own over the one
// lifecycle they share (its ports, and the primitives that move a row
// through importer.Next's table, count, stop and announce):
//
//   - Starting registers an import from a file, for 'importer run' and
//     for a schedule's inbox (start.go, split.go, scheduled.go,
//     schedules.go).
//   - Feeding decides what each row is to do (a sync's plan, a preview)
//     and queues the rows a window at a time (feed.go, plan.go,
//     preview.go, snapshot.go).
//   - RowWork carries a row from its submit to its outcome: the write, the
//     status checks, the read-back, the webhooks (submit.go, check.go,
//     verify.go, webhook.go).
//   - Finishing ends an import's round: its report and ledger, a retry of
//     its transient failures, its notifications (finalize.go, end.go,
//     ledger.go, notify.go).
//   - Administering is the operator's: cancel, review, approve, delete,
//     prune, retry and repair imports (admin.go, retry.go, repair.go).
//
// Imports itself routes Asynq's tasks to them (tasks.go).
type Imports struct {
	*lifecycle
	*Starting
	*Feeding
	*RowWork
	*Finishing
	*Administering
}

// lifecycle is what the roles share: the ports, the config, and the
// primitives every role moves rows and imports with.
type lifecycle struct {
	// api is nil in a process that sends nothing (a command that only
	// starts, cancels or reads imports).
	api   importer.WriteAPI
	store Store
	queue Enqueuer
	// reports is nil in a process without a report folder of its own
	// (the dashboard): the workers write the reports.
	reports Reports
	log     *slog.Logger
	cfg     Config
	// owner names this process in the leases of the files it claims.
	owner string
}

// Starting registers imports: from a file given to 'importer run', and
// from the files a schedule's firing finds in its inbox.
type Starting struct{ *lifecycle }

// Feeding decides what each row of an import is to do (a sync's plan
// against a snapshot of the PMS, or a preview of a file) and queues the
// rows a window at a time.
type Feeding struct{ *lifecycle }

// RowWork carries a row from its submit to its outcome: the write (or its
// lookup when its answer was lost), the status checks of its job, the
// read-back, and the webhooks that tell of it.
type RowWork struct{ *lifecycle }

// Finishing ends an import's round once its last row has an outcome: the
// report and the ledger, a retry of transient failures, the notifications.
type Finishing struct{ *lifecycle }

// Administering is what an operator does to imports: cancel, review,
// approve, delete, prune, retry, repair.
type Administering struct {
	*lifecycle
	// feed queues the rows a repair finds lost; fin ends an import a
	// cancel leaves without rows in flight.
	feed *Feeding
	fin  *Finishing
}

// NewImports returns the lifecycle's owner on its store and queue. api may
// be nil in a process that sends nothing, reports in one whose reports the
// workers write.
func NewImports(api importer.WriteAPI, store Store, queue Enqueuer, reports Reports, log *slog.Logger, cfg Config) *Imports {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tag := make([]byte, 8)
	rand.Read(tag)
	lc := &lifecycle{api: api, store: store, queue: queue, reports: reports, log: log, cfg: cfg.WithDefaults(), owner: hex.EncodeToString(tag)}
	feed, fin := &Feeding{lc}, &Finishing{lc}
	return &Imports{lifecycle: lc, Starting: &Starting{lc}, Feeding: feed, RowWork: &RowWork{lc}, Finishing: fin,
		Administering: &Administering{lifecycle: lc, feed: feed, fin: fin}}
}

// webhooksExpected tells whether this deployment receives webhooks: then
// jobs are indexed for them, and polling is a fallback.
func (lc *lifecycle) webhooksExpected() bool { return lc.cfg.PollFallback > 0 }

// enqueue puts a task on the queue; a task id already taken means the task
// is already there, which is what the caller wanted.
func (lc *lifecycle) enqueue(ctx context.Context, task *asynq.Task, opts ...asynq.Option) error {
	return enqueue(ctx, lc.queue, task, opts...)
}

func enqueue(ctx context.Context, q Enqueuer, task *asynq.Task, opts ...asynq.Option) error {
	_, err := q.EnqueueContext(ctx, task, opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
		return fmt.Errorf("error enqueuing %s: %w", task.Type(), err)
	}
	return nil
}

// resolve records a row's outcome (unless it has one), adding to the
// counters given in the same round trip, and, when it was the last row,
// enqueues the import's finalize.
func (lc *lifecycle) resolve(ctx context.Context, importID string, r importer.RowResult, stats ...string) error {
	_, err := lc.record(ctx, importID, importer.Move{Stats: stats}, r)
	return err
}

// resolveJob is resolve for news of the row's write job r.JobID: the row
// resolves only while it follows that job (see importer.RowJobResolved);
// stale news of a job it no longer follows changes nothing.
func (lc *lifecycle) resolveJob(ctx context.Context, importID string, r importer.RowResult, stats ...string) error {
	_, err := lc.record(ctx, importID, jobNews(r.JobID, stats...), r)
	return err
}

// jobNews is the move of news that a write job resolved: from the phases
// that follow a job, only while the row follows that one.
func jobNews(jobID string, stats ...string) importer.Move {
	return importer.Move{From: importer.PhasesOn(importer.RowJobResolved), FromJob: jobID, Stats: stats}
}

// move carries out the lifecycle's transition of a row read in phase from
// on event (see importer.Next), with what the new phase holds (m's Row,
// Job, Check, Lookups, ...), as one compare-and-set in the store: where
// the row is no longer in that phase, nothing moves (Moved.Moved is false).
func (lc *lifecycle) move(ctx context.Context, importID string, from importer.Phase, event importer.RowEvent, m importer.Move) (importer.Moved, error) {
	base, ok := importer.MoveOn(from, event)
	if !ok {
		return importer.Moved{Was: from}, fmt.Errorf("row %d: the lifecycle has no move on %s in phase %s", m.Row, event, from)
	}
	m.From, m.To = base.From, base.To
	if m.To == importer.PhaseResolved {
		return lc.record(ctx, importID, m, m.Result)
	}
	return lc.store.Move(ctx, importID, m)
}

// record moves a row to resolved with its outcome r (m says from where,
// and the counters to add), and does what follows: the row's place among
// its integration's writes in flight is released, the feed woken when it
// waits for room, the import finalized when it was the last row.
func (lc *lifecycle) record(ctx context.Context, importID string, m importer.Move, r importer.RowResult) (importer.Moved, error) {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	m.Row, m.To, m.Result = r.Row, importer.PhaseResolved, r
	res, err := lc.store.Move(ctx, importID, m)
	if err != nil {
		return res, err
	}
	if res.Ceiling != "" {
		// Its write took a place among its integration's writes in
		// flight: it is in flight no more.
		if err := lc.store.ReleasePlace(ctx, res.Ceiling, importID, r.Row); err != nil {
			lc.log.WarnContext(ctx, "cannot release the row's place among its integration's writes in flight; it is taken back at the write's deadline", "import_id", importID, "row", r.Row, "error", err)
		}
	}
	if res.Stale {
		lc.log.DebugContext(ctx, "stale news of an older job of the row ignored", "import_id", importID, "row", r.Row, "job_id", r.JobID)
		return res, nil
	}
	if res.Recorded && lc.cfg.Metrics != nil {
		lc.cfg.Metrics.RowResolved(r.Outcome)
	}
	lc.log.DebugContext(ctx, "row resolved", "import_id", importID, "row", r.Row, "status", r.Outcome, "job_id", r.JobID, "error_code", r.ErrorCode)
	if res.WakeSeq > 0 {
		// The feed waits for room, and this row made enough: wake it
		// now rather than at its next look.
		if err := enqueueWake(ctx, lc.queue, FeedPayload{ImportID: importID, Gen: res.WakeGen, Seq: res.WakeSeq}); err != nil {
			lc.log.WarnContext(ctx, "cannot wake the feed; it looks again within seconds", "import_id", importID, "error", err)
		}
	}
	if res.Done {
		return res, lc.finalize(ctx, importID)
	}
	return res, nil
}

// stop marks an import stopped, unless it is, and tells its targets (kind:
// stopped, or plan_refused for a sync's guard).
func (lc *lifecycle) stop(ctx context.Context, importID string, kind importer.EventKind, reason string) error {
	if err := lc.store.Stop(ctx, importID, reason); err != nil {
		return err
	}
	lc.log.ErrorContext(ctx, "import stopped", "import_id", importID, "reason", reason)
	imp, err := lc.store.Import(ctx, importID)
	if err != nil {
		lc.log.WarnContext(ctx, "cannot read a stopped import: no notification", "import_id", importID, "error", err)
		return nil
	}
	lc.announceImport(ctx, imp, kind, imp.Stopped)
	return nil
}

// stopImport stops the whole import on rejected credentials: every other row
// would be rejected the same way.
func (lc *lifecycle) stopImport(ctx context.Context, importID string, apiErr *importer.APIError) error {
	reason := fmt.Sprintf("the API rejected the credentials (%d %s); check PROPEXO_API_KEY, then run the same command again to resume",
		apiErr.Status, orDefault(apiErr.Code, "unauthorized"))
	return lc.stop(ctx, importID, importer.EventStopped, reason)
}

// finalize enqueues the finalize of the import's current round.
func (lc *lifecycle) finalize(ctx context.Context, importID string) error {
	imp, err := lc.store.Import(ctx, importID)
	if err != nil {
		return err
	}
	return EnqueueFinalize(ctx, lc.queue, importID, imp.Round)
}

// take reserves n API requests from the limiter. A wait comes back as a
// waitError: the task is rescheduled, no failure is counted.
func (lc *lifecycle) take(ctx context.Context, importID string, n int) error {
	if lc.cfg.Limiter == nil {
		return nil
	}
	err := lc.cfg.Limiter.Take(ctx, n)
	var w interface{ RetryIn() time.Duration }
	if errors.As(err, &w) {
		lc.count(ctx, importID, importer.StatThrottled)
		if lc.cfg.Metrics != nil {
			lc.cfg.Metrics.RateLimitWait()
		}
		return &waitError{after: w.RetryIn(), err: err}
	}
	return err
}

// count adds one to each of an import's counters given, in one round trip;
// a failure to count is logged, never a reason to redo the work that was
// counted.
func (lc *lifecycle) count(ctx context.Context, importID string, stats ...string) {
	if importID == "" {
		return // a preview (importer plan) stores nothing
	}
	if err := lc.store.Count(ctx, importID, stats...); err != nil {
		lc.log.WarnContext(ctx, "cannot count", "import_id", importID, "stats", stats, "error", err)
	}
}

// CountChecks counts, among an import's requests, the n requests with
// which the command that started it checked the API first (the key, the
// integration's vendor, the published limits): sent for the import, if
// before it existed.
func (lc *lifecycle) CountChecks(ctx context.Context, importID string, n int) {
	if n > 0 {
		lc.count(ctx, importID, slices.Repeat([]string{importer.StatRequests(importer.EndpointCheck)}, n)...)
	}
}

// countRequest counts one API request, the 429 when it was answered 429,
// and the other counters given.
func (lc *lifecycle) countRequest(ctx context.Context, importID, endpoint string, err error, also ...string) {
	lc.count(ctx, importID, requestStats(endpoint, err, also...)...)
}

// requestStats names the counters of one API request: its endpoint's, the
// 429s' when it was answered 429, and the others given.
func requestStats(endpoint string, err error, also ...string) []string {
	stats := append([]string{importer.StatRequests(endpoint)}, also...)
	if kind, ok := importer.ErrorKindOf(err); ok && kind == importer.KindRateLimited {
		stats = append(stats, importer.StatRateLimited)
	}
	return stats
}
