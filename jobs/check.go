package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/poll"
)

// TypeCheck reads the status of one write job.
const TypeCheck = "resident:check"

// CheckPayload is the payload of a resident:check task.
type CheckPayload struct {
	ImportID string `json:"import_id"`
	Row      int    `json:"row"`
	Line     int    `json:"line,omitempty"`
	JobID    string `json:"job_id"`
	// Check numbers the checks of one job: 1, 2, 3... Each has its own
	// task id, so a check that re-enqueues the next is never mistaken
	// for itself.
	Check int `json:"check"`
	// Deadline is when a write still PENDING is given up as timed_out:
	// --deadline after it was sent.
	Deadline time.Time `json:"deadline"`
	// Verify reads the created record back before the row succeeds.
	Verify bool `json:"verify,omitempty"`
	// IntegrationID and SubmittedAt place the check in the learned
	// schedule of the integration's writes.
	IntegrationID string    `json:"integration_id,omitempty"`
	SubmittedAt   time.Time `json:"submitted_at,omitzero"`
	// Vendor names the PMS, for its cache lag and the schedule a new
	// integration's checks start from.
	Vendor importer.Vendor `json:"vendor,omitempty"`
	// Frugal is true when the check's delay came from the frugal schedule
	// (the API's budget scarce): what it finds teaches that schedule.
	Frugal bool `json:"frugal,omitempty"`
	// Lookup finds the written resident by its key when --verify cannot
	// read it back by created_record_id (null, or another object's id).
	Lookup *importer.ResidentQuery `json:"lookup,omitempty"`
	// VerifySince, when set, is when the write was first seen SUCCESS
	// with RecordID: the check only reads the record back again, the
	// cache lag not having passed at the last try.
	VerifySince time.Time `json:"verify_since,omitzero"`
	RecordID    string    `json:"record_id,omitempty"`
}

// writes names whose writes the check's planner schedule is for.
func (p CheckPayload) writes() poll.Writes {
	return poll.Writes{IntegrationID: p.IntegrationID, Vendor: p.Vendor}
}

// CheckTaskID is the id of the n-th status check of a row's write job. The
// job is part of it: after a retry the row follows a new job, whose checks
// must not be mistaken for the old one's still on the queue.
func CheckTaskID(importID string, row int, jobID string, n int) string {
	return "check:" + importID + ":" + strconv.Itoa(row) + ":" + jobID + ":" + strconv.Itoa(n)
}

// NewCheckTask returns a status check task and its options, delayed by
// delay.
func NewCheckTask(p CheckPayload, delay time.Duration, maxRetry int) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("error encoding the check of row %d: %w", p.Row, err)
	}
	opts := []asynq.Option{
		asynq.TaskID(CheckTaskID(p.ImportID, p.Row, p.JobID, p.Check)),
		asynq.Queue(QueueCheck),
		asynq.MaxRetry(maxRetry),
		asynq.Timeout(time.Minute),
		asynq.ProcessAt(CheckAt(time.Now(), delay)),
	}
	return asynq.NewTask(TypeCheck, b), opts, nil
}

// CheckAt is when a check delay runs out, rounded up to the second: Asynq
// keeps a delayed task's time in whole seconds and starts it as that second
// begins, so a time left unrounded would run the check up to a second early,
// likely to find the write still PENDING.
func CheckAt(now time.Time, delay time.Duration) time.Time {
	at := now.Add(delay)
	if t := at.Truncate(time.Second); !t.Equal(at) {
		return t.Add(time.Second)
	}
	return at
}

// doubled returns d·2^k, capped at PollMax.
func (rw *RowWork) doubled(d time.Duration, k int) time.Duration {
	for i := 0; i < k && d < rw.cfg.PollMax; i++ {
		d *= 2
	}
	return min(d, rw.cfg.PollMax)
}

// checkDelay is how long to wait before check p.Check. With webhooks the
// checks are a slow fallback; with a planner they come when the
// integration's writes have likely resolved; otherwise at PollInitial,
// doubling.
// The planner's plan is kept in the payload (Frugal), for the check to
// teach the schedule that planned it.
func (rw *RowWork) checkDelay(ctx context.Context, p *CheckPayload) time.Duration {
	n := p.Check
	var at time.Duration // since the submit
	switch {
	case rw.cfg.PollFallback > 0:
		at = rw.doubled(rw.cfg.PollFallback, n-1)
	case rw.cfg.Planner != nil && !p.SubmittedAt.IsZero():
		plan := rw.cfg.Planner.CheckDelays(ctx, p.writes())
		p.Frugal = plan.Frugal
		switch n {
		case 1:
			at = plan.First
		default:
			at = rw.doubled(plan.Second, n-2)
		}
	default:
		return rw.doubled(rw.cfg.PollInitial, n-1)
	}
	delay := at
	if !p.SubmittedAt.IsZero() {
		delay = at - time.Since(p.SubmittedAt)
	}
	return min(max(delay, time.Second), rw.cfg.PollMax)
}

// scheduleCheck enqueues check n of a row's job (a no-op when it is already
// on the queue).
func (rw *RowWork) scheduleCheck(ctx context.Context, sp SubmitPayload, jobID string, n int) error {
	if sp.Deadline.IsZero() {
		// A payload without the import's choices: read them.
		imp, err := rw.store.Import(ctx, sp.ImportID)
		if err != nil {
			return err
		}
		sp.Deadline, sp.FollowFor, sp.Verify = imp.Deadline(), imp.Options.Deadline, imp.Options.Verify
	}
	sent := time.Now().UTC()
	p := CheckPayload{ImportID: sp.ImportID, Row: sp.Row, Line: sp.Line, JobID: jobID, Check: n,
		Deadline: sp.followedUntil(sent), Verify: sp.Verify,
		IntegrationID: sp.Resident.IntegrationID, SubmittedAt: sent, Vendor: sp.Vendor}
	if sp.Verify && sp.Update == nil {
		q := importer.QueryFor(sp.Resident)
		p.Lookup = &q
	}
	return rw.enqueueCheck(ctx, p)
}

func (rw *RowWork) enqueueCheck(ctx context.Context, p CheckPayload) error {
	delay := rw.checkDelay(ctx, &p)
	if left := time.Until(p.Deadline); left < delay {
		// The last check comes as the deadline passes (CheckAt rounds
		// it up to the second, never earlier).
		delay = max(left, 0)
	}
	task, opts, err := NewCheckTask(p, delay, rw.cfg.MaxRetry)
	if err != nil {
		return err
	}
	return rw.enqueue(ctx, task, opts...)
}

// Check handles resident:check, as the lifecycle's table says (see
// importer.Next): a row following the job reads its status; a PENDING job
// gets its next check, under a new task id and a longer delay, until the
// deadline; any other state resolves the row. A stopped import parks the
// row. The handler never waits: a job that is not done is looked at again
// by a later task.
func (rw *RowWork) Check(ctx context.Context, p CheckPayload) error {
	st, err := rw.store.RowState(ctx, p.ImportID, p.Row)
	if err != nil {
		return err
	}
	if st.Gone {
		rw.log.WarnContext(ctx, "the import is gone from Redis: its row's job is no longer followed", "import_id", p.ImportID, "row", p.Row, "job_id", p.JobID)
		return nil
	}
	event := importer.RowCheckDue
	if st.Stopped != "" {
		event = importer.RowCheckStopped
	}
	t, ok := importer.Next(st.Phase(), event)
	switch {
	case !ok || st.JobID != p.JobID:
		return nil // resolved, parked, or following another job since
	case st.Check == p.Check+1:
		// This check ran before and scheduled the next one, then was
		// delivered again: make sure the next one is on the queue.
		next := p
		next.Check++
		return rw.enqueueCheck(ctx, next)
	case st.Check != p.Check:
		return nil // a stale link of the chain
	case t.To == importer.PhaseParked:
		_, err := rw.park(ctx, p)
		return err // followed again when the import is resumed
	}

	if !p.VerifySince.IsZero() {
		return rw.verifyWrite(ctx, p, p.RecordID)
	}
	if applied, err := rw.pendingEvent(ctx, p.ImportID, p.Row, p.Line, p.JobID); applied || err != nil {
		return err // a webhook told us already: no request needed
	}
	requests := 1
	if p.Verify {
		requests = 2 // the status, and the record read back on success
	}
	if err := rw.take(ctx, p.ImportID, requests); err != nil {
		return err
	}
	status, err := rw.api.WriteStatus(ctx, p.JobID)
	stats := requestStats(importer.EndpointWriteStatus, err, importer.StatStatusChecks)
	if err != nil || status.State == importer.WritePending || p.Verify {
		rw.count(ctx, p.ImportID, stats...)
		stats = nil // counted
	}
	if err != nil {
		return rw.checkFailed(ctx, p, err)
	}
	if rw.cfg.Metrics != nil && status.State != importer.WritePending && !p.SubmittedAt.IsZero() {
		rw.cfg.Metrics.WriteResolved(time.Since(p.SubmittedAt))
	}
	if rw.cfg.Planner != nil && rw.cfg.PollFallback == 0 {
		rw.cfg.Planner.Observe(ctx, p.writes(), p.Check, p.Frugal, status.State == importer.WritePending)
	}
	result := importer.RowResult{Row: p.Row, Line: p.Line, JobID: p.JobID}
	switch status.State {
	case importer.WritePending:
		if !time.Now().Before(p.Deadline) {
			result.Outcome, result.ErrorCode = importer.TimedOut, importer.CodeTimedOut
			result.Error = fmt.Sprintf("the write was still PENDING at its deadline (%s, --deadline after it was sent); follow it up with its job id", p.Deadline.UTC().Format(time.RFC3339))
			return rw.resolveJob(ctx, p.ImportID, result)
		}
		next := p
		next.Check++
		if moved, err := rw.advance(ctx, p, next.Check); err != nil || !moved {
			return err // not moved: resolved (a webhook), or advanced, since
		}
		return rw.enqueueCheck(ctx, next)
	case importer.WriteSuccess:
		if p.Verify {
			return rw.verifyWrite(ctx, p, status.CreatedRecordID)
		}
		result.Outcome, result.RecordID = importer.Succeeded, status.CreatedRecordID
		if status.CreatedRecordID == "" {
			result.Error = noRecordID
		}
	case importer.WritePartialSuccess:
		result.Outcome, result.RecordID, result.ErrorCode = importer.Partial, status.CreatedRecordID, importer.CodePartial
		result.Error = orDefault(strings.Join(status.Errors, "; "), "the PMS accepted part of the write")
	default:
		result.Outcome, result.ErrorCode = importer.Failed, importer.FailureCode(status.Errors)
		result.Error = orDefault(strings.Join(status.Errors, "; "), "the PMS rejected the write without a message")
	}
	return rw.resolveJob(ctx, p.ImportID, result, stats...) // counted with the outcome, in one round trip
}

// advance moves the row from the status check p to check number next, as
// the lifecycle does for a job still PENDING: only while the row follows
// p's job at p's check.
func (rw *RowWork) advance(ctx context.Context, p CheckPayload, next int) (bool, error) {
	m, err := rw.move(ctx, p.ImportID, importer.PhaseFollowing, importer.RowPending,
		importer.Move{Row: p.Row, FromJob: p.JobID, FromCheck: p.Check, Job: p.JobID, Check: next})
	return m.Moved, err
}

// park stops following the row's job while its import is stopped: running
// the import again follows it again.
func (rw *RowWork) park(ctx context.Context, p CheckPayload) (bool, error) {
	m, err := rw.move(ctx, p.ImportID, importer.PhaseFollowing, importer.RowCheckStopped,
		importer.Move{Row: p.Row, FromJob: p.JobID, FromCheck: p.Check, Job: p.JobID})
	return m.Moved, err
}

// checkFailed decides what a failed status read means for the row.
func (rw *RowWork) checkFailed(ctx context.Context, p CheckPayload, err error) error {
	apiErr, ok := asAPIError(err)
	if !ok {
		return err
	}
	switch apiErr.Kind {
	case importer.KindUnauthorized:
		if err := rw.stopImport(ctx, p.ImportID, apiErr); err != nil {
			return err
		}
		_, perr := rw.park(ctx, p)
		return perr
	case importer.KindRateLimited:
		return &waitError{after: rateLimitWait(err), err: err}
	}
	if apiErr.Kind == importer.KindNotFound {
		// The API does not know the job id it gave us (404, or 400: the
		// answer is undocumented). Reading again spends the budget on a
		// job that may never appear: the row ends job_not_found at once.
		// Its write may have happened, so it is never offered to send
		// again; 'importer retry' follows the job again.
		return rw.resolveJob(ctx, p.ImportID, importer.RowResult{Row: p.Row, Line: p.Line, Outcome: importer.Failed, JobID: p.JobID,
			ErrorCode: importer.CodeJobNotFound, Error: fmt.Sprintf("the API does not know this write job (HTTP %d); its write may have happened: 'importer retry' follows it again", apiErr.Status)})
	}
	rw.count(ctx, p.ImportID, importer.StatRetries)
	if lastAttempt(ctx) {
		return rw.resolveJob(ctx, p.ImportID, importer.RowResult{Row: p.Row, Line: p.Line, Outcome: importer.Failed, JobID: p.JobID,
			ErrorCode: importer.CodeRetriesSpent, Error: "the write's status could not be read after every retry (check it with its job id): " + apiErr.Error()})
	}
	return err
}
