package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// This file is the Asynq side of the lifecycle: the queues, the server's
// settings, and the handlers, which decode a task's payload and call the
// operation of Imports that does the work.

// Queue names. Status checks and finalizes go before new submits, so that
// rows already sent reach their outcome first.
const (
	QueueSubmit   = "importer-submit"
	QueueCheck    = "importer-check"
	QueueFinalize = "importer-finalize"
)

// Queues are the queues a server must serve, with their weights.
var Queues = map[string]int{QueueFinalize: 6, QueueCheck: 3, QueueSubmit: 2, QueueNotify: 1}

// Enqueuer puts tasks on the queue; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
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

// Register adds the task handlers to a mux, under their exact type names.
func (im *Imports) Register(mux *asynq.ServeMux) {
	mux.Handle(TypeSubmit, handler(TypeSubmit, im.Submit, im.requeue))
	mux.Handle(TypeCheck, handler(TypeCheck, im.Check, im.requeue))
	mux.Handle(TypeFinalize, handler(TypeFinalize, im.Finalize, im.requeue))
	mux.Handle(TypeFeed, handler(TypeFeed, im.Feed, im.requeue))
	mux.Handle(TypePlan, handler(TypePlan, im.Plan, im.requeue))
	mux.Handle(TypeRetryTransient, handler(TypeRetryTransient, im.RetryTransient, im.requeue))
	mux.Handle(TypeScheduledImport, handler(TypeScheduledImport, im.StartScheduled, im.requeue))
	mux.Handle(TypeNotify, handler(TypeNotify, im.Notify, im.requeue))
}

// requeue queues a copy of the running task to run after a wait, under an
// id of its own (the running task holds its id until it is done), with the
// running task's queue, retries and timeout. A wait is a re-enqueue, never
// a failure: Asynq archives a task that returns an error once its retries
// are spent, whether the error counts as a failure or not, so a wait on a
// task's last attempt goes through here.
func (im *Imports) requeue(ctx context.Context, t *asynq.Task, after, timeout time.Duration) error {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	opts := []asynq.Option{asynq.TaskID(id + ":w" + strconv.FormatInt(time.Now().UnixNano(), 36)), asynq.Queue(queue),
		asynq.MaxRetry(maxRetry), asynq.ProcessIn(after)}
	if timeout > 0 {
		opts = append(opts, asynq.Timeout(timeout))
	}
	return im.enqueue(ctx, asynq.NewTask(t.Type(), t.Payload()), opts...)
}

// ProcessTask runs one task through its handler: Imports is an
// asynq.Handler, which is how tests and benchmarks hand it tasks.
func (im *Imports) ProcessTask(ctx context.Context, t *asynq.Task) error {
	mux := asynq.NewServeMux()
	im.Register(mux)
	return mux.ProcessTask(ctx, t)
}

// handler decodes a task's payload and calls the operation with it. A
// payload that cannot be decoded is not retried: it never will be. A wait
// (a waitError) is Asynq's retry without a failure counted, but on the
// task's last attempt, which Asynq would archive, it is a copy of the task
// queued by requeue.
func handler[P any](typ string, op func(context.Context, P) error, requeue func(ctx context.Context, t *asynq.Task, after, timeout time.Duration) error) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		// Asynq gives the handler its task's timeout as the context's
		// deadline: the copy of a wait keeps it.
		var timeout time.Duration
		if deadline, ok := ctx.Deadline(); ok {
			timeout = time.Until(deadline).Round(time.Second)
		}
		var p P
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("bad %s payload: %v: %w", typ, err, asynq.SkipRetry)
		}
		err := op(ctx, p)
		var w *waitError
		if errors.As(err, &w) && lastAttempt(ctx) {
			return requeue(ctx, t, w.after, timeout)
		}
		return err
	})
}

var _ asynq.ErrorHandler = (*Imports)(nil)

// HandleError is the Asynq server's error handler. When a submit or a check
// fails for the last time for a reason the handler did not turn into an
// outcome (Redis trouble, a bug), the row fails with code internal_error, so
// the import still ends and its report names the row: no row is left behind
// in the archive.
func (im *Imports) HandleError(ctx context.Context, task *asynq.Task, err error) {
	if !IsFailure(err) || (!lastAttempt(ctx) && !errors.Is(err, asynq.SkipRetry)) {
		return
	}
	var p struct {
		ImportID string `json:"import_id"`
		Row      int    `json:"row"`
		Line     int    `json:"line"`
		JobID    string `json:"job_id"`
	}
	if task.Type() == TypeNotify {
		var n NotifyPayload
		if json.Unmarshal(task.Payload(), &n) == nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			im.notifyFailed(ctx, n, err)
		}
		return
	}
	if task.Type() == TypePlan && json.Unmarshal(task.Payload(), &p) == nil && p.ImportID != "" {
		// The residents could not be listed, every try: nothing was
		// written; the import stops, and running it again resumes it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		reason := "the residents to match the rows against could not be listed: " + err.Error() + "; run the same command again to resume"
		if serr := im.stop(ctx, p.ImportID, importer.EventStopped, reason); serr != nil {
			im.log.ErrorContext(ctx, "cannot stop an import", "import_id", p.ImportID, "error", serr)
		}
		return
	}
	if task.Type() != TypeSubmit && task.Type() != TypeCheck || json.Unmarshal(task.Payload(), &p) != nil || p.ImportID == "" {
		im.log.ErrorContext(ctx, "task failed for good", "type", task.Type(), "error", err)
		return
	}
	r := importer.RowResult{Row: p.Row, Line: p.Line, JobID: p.JobID, Outcome: importer.Failed, ErrorCode: importer.CodeInternal,
		Error: "the importer could not process this row: " + err.Error()}
	// The task's context may be the reason it failed (its deadline).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	resolve := im.resolve
	if r.JobID != "" {
		resolve = im.resolveJob
	}
	if rerr := resolve(ctx, p.ImportID, r); rerr != nil {
		im.log.ErrorContext(ctx, "cannot record a failed row", "import_id", p.ImportID, "row", p.Row, "error", rerr)
	}
}
