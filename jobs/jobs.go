// Package jobs holds the importer's Asynq tasks: their type names, payloads,
// constructors and handlers (import:feed, resident:submit, resident:check,
// import:finalize, ...), the split of a file into stored rows, and the retry
// policy that maps API error kinds to "fail the row", "stop the import",
// "retry with backoff" and "wait, it is not a failure".
//
// Every handler is safe to run twice: Asynq delivers tasks at least once.
package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// Queue names. Status checks and finalizes go before new submits, so that
// rows already sent reach their outcome first.
const (
	QueueSubmit   = "importer-submit"
	QueueCheck    = "importer-check"
	QueueFinalize = "importer-finalize"
)

// Queues are the queues a server must serve, with their weights.
var Queues = map[string]int{QueueFinalize: 6, QueueCheck: 3, QueueSubmit: 2}

// Enqueuer puts tasks on the queue; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// ReportWriter writes an import's report and returns its folder.
type ReportWriter interface {
	WriteReport(ctx context.Context, imp importer.Import) (string, error)
}

// The defaults of the handlers' Config, each said once here.
const (
	DefaultPollInitial = 2 * time.Second
	DefaultPollMax     = 5 * time.Minute
	DefaultMaxRetry    = 10
)

// Config tunes the handlers. The zero value of each field is its default.
type Config struct {
	// PollInitial is the delay before a write's first status check.
	// Default 2s.
	PollInitial time.Duration
	// PollMax caps the growing delay between status checks. Default 5m.
	PollMax time.Duration
	// MaxRetry is how often a task is retried after a 5xx or network error
	// before its row fails. Waiting for a rate limit does not count.
	// Default 10.
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
	// Open reads input files, for scheduled imports. Default: none (the
	// worker cannot run them).
	Open Opener
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
}

// Planner learns when writes resolve; *poll.Learner is one.
type Planner interface {
	// Schedule returns the times of the first and second status checks,
	// counted from the submit.
	Schedule(ctx context.Context, integrationID string) (first, second time.Duration)
	// Observe learns from status check number n: was the write PENDING?
	Observe(ctx context.Context, integrationID string, n int, pending bool)
}

// Metrics observes what the handlers do; *metrics.Metrics is one.
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
}

// WithDefaults returns the config with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.PollInitial <= 0 {
		c.PollInitial = DefaultPollInitial
	}
	if c.PollMax <= 0 {
		c.PollMax = DefaultPollMax
	}
	if c.PollMax < c.PollInitial {
		c.PollMax = c.PollInitial
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = DefaultMaxRetry
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if len(c.LookupWaits) == 0 {
		c.LookupWaits = DefaultLookupWaits
	}
	return c
}

// ImportStore is the state store as scheduled imports need it: the Store,
// creating and finding imports, what a split needs, and the leases of
// claimed files.
type ImportStore interface {
	importer.Store
	SplitStore
	CreateImport(ctx context.Context, imp importer.Import) (stored importer.Import, created bool, err error)
	ImportByContent(ctx context.Context, key string) (id string, ok bool, err error)
	Epoch(ctx context.Context) (epoch string, made bool, err error)
	Progress(ctx context.Context, importID string) (importer.Progress, error)
	Resume(ctx context.Context, importID string) error
	Claim(ctx context.Context, path, owner string, ttl time.Duration) (bool, error)
	Claimed(ctx context.Context, path string) (bool, error)
	Unclaim(ctx context.Context, path, owner string) error
}

// Handlers process the importer's tasks.
type Handlers struct {
	api     importer.WriteAPI
	store   importer.Store
	splits  ImportStore // nil unless the store can create imports
	feeds   FeedStore   // nil unless the store can feed imports
	queue   Enqueuer
	reports ReportWriter
	log     *slog.Logger
	cfg     Config
	// owner names this process in the leases of the files it claims.
	owner string
}

// NewHandlers returns the handlers with their dependencies.
func NewHandlers(api importer.WriteAPI, store importer.Store, queue Enqueuer, reports ReportWriter, log *slog.Logger, cfg Config) *Handlers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tag := make([]byte, 8)
	rand.Read(tag)
	h := &Handlers{api: api, store: store, queue: queue, reports: reports, log: log, cfg: cfg.WithDefaults(), owner: hex.EncodeToString(tag)}
	h.splits, _ = store.(ImportStore)
	h.feeds, _ = store.(FeedStore)
	return h
}

// Register adds the handlers to a mux, under their exact type names.
func (h *Handlers) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeSubmit, h.Submit)
	mux.HandleFunc(TypeCheck, h.Check)
	mux.HandleFunc(TypeFinalize, h.Finalize)
	mux.HandleFunc(TypeFeed, h.Feed)
	mux.HandleFunc(TypeScheduledImport, h.ScheduledImport)
}

// ServerConfig returns the Asynq server settings the handlers need: their
// queues, the retry delays and which errors are not failures.
func ServerConfig(concurrency int, logger asynq.Logger) asynq.Config {
	return asynq.Config{
		Concurrency:    concurrency,
		Queues:         Queues,
		RetryDelayFunc: RetryDelay,
		IsFailure:      IsFailure,
		Logger:         logger,
		// Asynq stores a delayed task's time in whole seconds; looking
		// ten times a second starts a check soon after its second comes.
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		// An idle worker looks for new tasks ten times a second, so a
		// feed or a finalize does not wait long to start. Both cost an
		// idle worker a few dozen small Redis calls a second.
		TaskCheckInterval: 100 * time.Millisecond,
		ShutdownTimeout:   20 * time.Second,
	}
}

var _ asynq.ErrorHandler = (*Handlers)(nil)

// HandleError is the Asynq server's error handler. When a submit or a check
// fails for the last time for a reason the handler did not turn into an
// outcome (Redis trouble, a bug), the row fails with code internal_error, so
// the import still ends and its report names the row: no row is left behind
// in the archive.
func (h *Handlers) HandleError(ctx context.Context, task *asynq.Task, err error) {
	if !IsFailure(err) || (!lastAttempt(ctx) && !errors.Is(err, asynq.SkipRetry)) {
		return
	}
	var p struct {
		ImportID string `json:"import_id"`
		Row      int    `json:"row"`
		Line     int    `json:"line"`
		JobID    string `json:"job_id"`
	}
	if task.Type() != TypeSubmit && task.Type() != TypeCheck || json.Unmarshal(task.Payload(), &p) != nil || p.ImportID == "" {
		h.log.ErrorContext(ctx, "task failed for good", "type", task.Type(), "error", err)
		return
	}
	r := importer.RowResult{Row: p.Row, Line: p.Line, JobID: p.JobID, Outcome: importer.Failed, ErrorCode: importer.CodeInternal,
		Error: "the importer could not process this row: " + err.Error()}
	// The task's context may be the reason it failed (its deadline).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, rerr := h.record(ctx, p.ImportID, r, r.JobID != ""); rerr != nil {
		h.log.ErrorContext(ctx, "cannot record a failed row", "import_id", p.ImportID, "row", p.Row, "error", rerr)
	}
}

// webhooksExpected tells whether this deployment receives webhooks: then
// jobs are indexed for them, and polling is a fallback.
func (h *Handlers) webhooksExpected() bool { return h.cfg.PollFallback > 0 }

// enqueue puts a task on the queue; a task id already taken means the task
// is already there, which is what the caller wanted.
func (h *Handlers) enqueue(ctx context.Context, task *asynq.Task, opts ...asynq.Option) error {
	return enqueue(ctx, h.queue, task, opts...)
}

func enqueue(ctx context.Context, q Enqueuer, task *asynq.Task, opts ...asynq.Option) error {
	_, err := q.EnqueueContext(ctx, task, opts...)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) && !errors.Is(err, asynq.ErrDuplicateTask) {
		return fmt.Errorf("error enqueuing %s: %w", task.Type(), err)
	}
	return nil
}

// resolve records a row's outcome, adding to the counters given in the same
// round trip, and, when it was the last row, enqueues the import's finalize.
func (h *Handlers) resolve(ctx context.Context, importID string, r importer.RowResult, stats ...string) error {
	_, err := h.record(ctx, importID, r, false, stats...)
	return err
}

// resolveJob is resolve for news of the row's write job r.JobID: stale
// news of a job the row no longer follows changes nothing.
func (h *Handlers) resolveJob(ctx context.Context, importID string, r importer.RowResult, stats ...string) error {
	_, err := h.record(ctx, importID, r, true, stats...)
	return err
}

// record is resolve (resolveJob when ofJob), telling what recording the
// outcome did.
func (h *Handlers) record(ctx context.Context, importID string, r importer.RowResult, ofJob bool, stats ...string) (importer.Resolution, error) {
	if r.At.IsZero() {
		r.At = time.Now().UTC()
	}
	resolve := h.store.Resolve
	if ofJob {
		resolve = h.store.ResolveJob
	}
	res, err := resolve(ctx, importID, r, stats...)
	if err != nil {
		return res, err
	}
	if res.Stale {
		h.log.DebugContext(ctx, "stale news of an older job of the row ignored", "import_id", importID, "row", r.Row, "job_id", r.JobID)
		return res, nil
	}
	if res.Recorded && h.cfg.Metrics != nil {
		h.cfg.Metrics.RowResolved(r.Outcome)
	}
	h.log.DebugContext(ctx, "row resolved", "import_id", importID, "row", r.Row, "status", r.Outcome, "job_id", r.JobID, "error_code", r.ErrorCode)
	if res.WakeSeq > 0 {
		// The feed waits for room, and this row made enough: wake it
		// now rather than at its next look.
		if err := enqueueWake(ctx, h.queue, FeedPayload{ImportID: importID, Gen: res.WakeGen, Seq: res.WakeSeq}); err != nil {
			h.log.WarnContext(ctx, "cannot wake the feed; it looks again within seconds", "import_id", importID, "error", err)
		}
	}
	if res.Done {
		return res, h.finalize(ctx, importID)
	}
	return res, nil
}

// finalize enqueues the finalize of the import's current round.
func (h *Handlers) finalize(ctx context.Context, importID string) error {
	imp, err := h.store.Import(ctx, importID)
	if err != nil {
		return err
	}
	return EnqueueFinalize(ctx, h.queue, importID, imp.Round)
}

// take reserves n API requests from the limiter. A wait comes back as a
// waitError: the task is rescheduled, no failure is counted.
func (h *Handlers) take(ctx context.Context, importID string, n int) error {
	if h.cfg.Limiter == nil {
		return nil
	}
	err := h.cfg.Limiter.Take(ctx, n)
	var w interface{ RetryIn() time.Duration }
	if errors.As(err, &w) {
		h.count(ctx, importID, importer.StatThrottled)
		if h.cfg.Metrics != nil {
			h.cfg.Metrics.RateLimitWait()
		}
		return &waitError{after: w.RetryIn(), err: err}
	}
	return err
}

// count adds one to each of an import's counters given, in one round trip;
// a failure to count is logged, never a reason to redo the work that was
// counted.
func (h *Handlers) count(ctx context.Context, importID string, stats ...string) {
	if err := h.store.Count(ctx, importID, stats...); err != nil {
		h.log.WarnContext(ctx, "cannot count", "import_id", importID, "stats", stats, "error", err)
	}
}

// countRequest counts one API request, the 429 when it was answered 429,
// and the other counters given.
func (h *Handlers) countRequest(ctx context.Context, importID, endpoint string, err error, also ...string) {
	h.count(ctx, importID, requestStats(endpoint, err, also...)...)
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
