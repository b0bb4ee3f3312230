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

// RetryOptions are the choices of a retry.
type RetryOptions struct {
	// InDoubt also takes the rows in doubt (their create may have reached
	// the API, and their resident was not found): each is looked up
	// again, adopted when found, sent when not. Meant for once the PMS
	// has synced (the next day, say), when a lookup that finds nothing
	// can be trusted.
	InDoubt bool
}

// PlanRetry says what 'importer retry' does with a row, and false for a row
// it leaves as it is. A write the PMS failed for a reason a retry can mend
// (it was down, in maintenance, timed out, or said nothing) is retried
// through the API's retry-write; one it refused for its data
// (pms_rejected) is not: the same write would fail again; a create that kept failing although
// it certainly never reached the API is sent again; a job whose status could
// not be read, that the API did not know, or whose record could not be read
// back is followed again. Rows in doubt are never sent blindly: only with
// InDoubt, and then looked up first.
func PlanRetry(r importer.RowResult, opts RetryOptions) (importer.RetryPlan, bool) {
	if r.Outcome != importer.Failed {
		return importer.RetryPlan{}, false
	}
	plan := importer.RetryPlan{Result: r, Action: importer.FollowJob}
	switch r.ErrorCode {
	case importer.CodeInDoubt:
		plan.Action = importer.LookUpThenSend
		return plan, opts.InDoubt
	case importer.CodeWriteFailed:
		plan.Action = importer.RetryWrite
		return plan, r.JobID != ""
	case importer.CodeJobNotFound, importer.CodeRecordGone, importer.CodeInternal:
		return plan, r.JobID != ""
	case importer.CodeRetriesSpent:
		if r.JobID == "" {
			plan.Action = importer.Resend
		}
		return plan, true
	}
	return importer.RetryPlan{}, false
}

// Retryable reports whether 'importer retry' tries the row again.
func Retryable(r importer.RowResult) bool {
	_, ok := PlanRetry(r, RetryOptions{})
	return ok
}

// RetryResult says what Retry did.
type RetryResult struct {
	// Reopened counts the rows taken back to be tried again.
	Reopened int
	// Resumed is true when a retry round that was already open (an
	// earlier retry was interrupted) was resumed instead.
	Resumed bool
}

// ErrStillRunning is returned by Retry for an import that has not finished
// its first round.
var ErrStillRunning = errors.New("the import has not finished")

// Retry opens a finished import again for its rows worth another try (see
// PlanRetry) and starts the feed that works them. Taking the rows back and
// recording what is to be done with each is one atomic step, and the feed
// does only that: a retry interrupted at any point, then run again (or the
// import's 'importer run'), resumes the same round and sends nothing twice.
func (adm *Administering) Retry(ctx context.Context, id string, opts RetryOptions) (RetryResult, error) {
	st := adm.store
	imp, err := st.Import(ctx, id)
	if err != nil {
		return RetryResult{}, err
	}
	if !imp.Finished() {
		if imp.Round == 0 {
			return RetryResult{}, fmt.Errorf("import %s: %w", id, ErrStillRunning)
		}
		return RetryResult{Resumed: true}, adm.resumeRound(ctx, imp)
	}
	var plans []importer.RetryPlan
	for row, err := range st.Rows(ctx, id, imp.Total) {
		if err != nil {
			return RetryResult{}, err
		}
		if plan, ok := PlanRetry(row.Result, opts); ok {
			plans = append(plans, plan)
		}
	}
	if len(plans) == 0 {
		return RetryResult{}, nil
	}
	reopened, err := st.Reopen(ctx, id, plans)
	if err != nil {
		return RetryResult{}, err
	}
	if imp, err = st.Import(ctx, id); err != nil {
		return RetryResult{}, err
	}
	return RetryResult{Reopened: len(reopened)}, adm.resumeRound(ctx, imp)
}

// resumeRound starts a feed over the import's rows: it queues the work of
// every row without an outcome, or, when none is left, the round's
// finalize.
func (adm *Administering) resumeRound(ctx context.Context, imp importer.Import) error {
	st := adm.store
	p, err := st.Progress(ctx, imp.ID)
	if err != nil {
		return err
	}
	if p.Done() {
		return EnqueueFinalize(ctx, adm.queue, imp.ID, imp.Round)
	}
	gen, err := st.StartFeed(ctx, imp.ID)
	if err != nil {
		return err
	}
	return EnqueueFeed(ctx, adm.queue, FeedPayload{ImportID: imp.ID, Gen: gen, Seq: 1}, 0)
}

// TypeRetryTransient is the task that retries an import's transient
// failures by themselves (importer.Import.RetryTransient).
const TypeRetryTransient = "import:retry-transient"

// RetryTransientPayload names the import and the round whose failures
// are retried.
type RetryTransientPayload struct {
	ImportID string `json:"import_id"`
	Round    int    `json:"round"`
}

// RetryTransient handles import:retry-transient: the round's rows a retry
// can mend are tried again, as 'importer retry' would, unless the import
// has been retried (or deleted) since.
func (adm *Administering) RetryTransient(ctx context.Context, p RetryTransientPayload) error {
	imp, err := adm.store.Import(ctx, p.ImportID)
	if errors.Is(err, importer.ErrImportNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if imp.Round != p.Round || !imp.Finished() {
		return nil // retried by hand since, or running
	}
	res, err := adm.Retry(ctx, p.ImportID, RetryOptions{})
	if errors.Is(err, ErrStillRunning) {
		return nil
	}
	if err != nil {
		return err
	}
	adm.log.InfoContext(ctx, "transient failures retried by themselves", "import_id", p.ImportID, "rows", res.Reopened)
	return nil
}

// scheduleTransientRetry queues, after a round that ended with rows a retry
// can mend, their retry RetryTransient later, once per round and for at
// most importer.MaxTransientRetries rounds; it returns what the
// notification says of it ("" for nothing queued).
func (fin *Finishing) scheduleTransientRetry(ctx context.Context, imp importer.Import) string {
	if imp.RetryTransient <= 0 || imp.Round >= importer.MaxTransientRetries || !imp.CancelledAt.IsZero() {
		return ""
	}
	n := 0
	for row, err := range fin.store.Rows(ctx, imp.ID, imp.Total) {
		if err != nil {
			fin.log.WarnContext(ctx, "cannot read the rows to retry: none retried by themselves", "import_id", imp.ID, "error", err)
			return ""
		}
		if Retryable(row.Result) {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	b, err := json.Marshal(RetryTransientPayload{ImportID: imp.ID, Round: imp.Round})
	if err != nil {
		return ""
	}
	at := time.Now().Add(imp.RetryTransient)
	err = enqueue(ctx, fin.queue, asynq.NewTask(TypeRetryTransient, b), asynq.TaskID("retry-transient:"+imp.ID+":"+strconv.Itoa(imp.Round)),
		asynq.Queue(QueueFinalize), asynq.ProcessAt(at), asynq.MaxRetry(25))
	if err != nil {
		fin.log.WarnContext(ctx, "cannot queue the retry of transient failures", "import_id", imp.ID, "error", err)
		return ""
	}
	fin.log.InfoContext(ctx, "transient failures to be retried", "import_id", imp.ID, "rows", n, "at", at)
	return fmt.Sprintf("%d rows failed for a reason a retry can mend (the PMS down or in maintenance, a job that went unanswered): they are tried again by themselves at %s (retry_transient; round %d of at most %d)",
		n, at.UTC().Format(time.RFC3339), imp.Round+1, importer.MaxTransientRetries)
}
