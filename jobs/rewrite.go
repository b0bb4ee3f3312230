package jobs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// TypeRetryWrite retries a failed write through POST
// /v1/admin/retry-write/{job} and follows the new job.
const TypeRetryWrite = "resident:retry-write"

// RetryWritePayload is the payload of a resident:retry-write task.
type RetryWritePayload struct {
	ImportID      string `json:"import_id"`
	Row           int    `json:"row"`
	Line          int    `json:"line,omitempty"`
	JobID         string `json:"job_id"`
	IntegrationID string `json:"integration_id,omitempty"`
	Round         int    `json:"round"`
}

// Retryable reports whether a row failed for a reason worth trying again,
// and safely: a write the PMS refused (it may have been down: retried
// through retry-write), a create that kept failing although it certainly did
// not reach the API (sent again), a job whose status could not be read or
// that the API did not know, or whose record could not be read back
// (followed again). Rows in doubt are never retried: that could create a
// resident twice.
func Retryable(r importer.RowResult) bool {
	if r.Outcome != importer.Failed {
		return false
	}
	switch r.ErrorCode {
	case importer.CodeWriteFailed, importer.CodeJobNotFound, importer.CodeRecordGone, importer.CodeInternal:
		return r.JobID != ""
	case importer.CodeRetriesSpent:
		return true
	}
	return false
}

// Retry queues the work that tries a retryable row again, in the import's
// current round: a retry-write for a refused write, status checks for a job
// whose status could not be read, a fresh submit of resident (rebuilt from
// the input) for a create that never got through.
func Retry(ctx context.Context, q Enqueuer, st importer.Store, imp importer.Import, r importer.RowResult, resident importer.Resident, maxRetry int) error {
	switch {
	case r.ErrorCode == importer.CodeWriteFailed:
		b, err := json.Marshal(RetryWritePayload{ImportID: imp.ID, Row: r.Row, Line: r.Line, JobID: r.JobID, IntegrationID: resident.IntegrationID, Round: imp.Round})
		if err != nil {
			return err
		}
		return enqueue(ctx, q, asynq.NewTask(TypeRetryWrite, b),
			asynq.TaskID("retry-write:"+imp.ID+":"+strconv.Itoa(r.Row)+":"+strconv.Itoa(imp.Round)),
			asynq.Queue(QueueSubmit), asynq.MaxRetry(maxRetry), asynq.Timeout(2*time.Minute))
	case r.JobID != "":
		if err := st.SetJob(ctx, imp.ID, r.Row, r.JobID, true); err != nil {
			return err
		}
		task, opts, err := NewCheckTask(CheckPayload{ImportID: imp.ID, Row: r.Row, Line: r.Line, JobID: r.JobID, Check: 1,
			Deadline: time.Now().Add(imp.Options.Deadline), Verify: imp.Options.Verify, IntegrationID: resident.IntegrationID}, time.Second, maxRetry)
		if err != nil {
			return err
		}
		return enqueue(ctx, q, task, opts...)
	default:
		task, opts, err := NewSubmitTask(SubmitPayload{ImportID: imp.ID, Row: r.Row, Line: r.Line, Vendor: imp.Options.Vendor, Resident: resident,
			Deadline: time.Now().Add(imp.Options.Deadline), Verify: imp.Options.Verify}, maxRetry)
		if err != nil {
			return err
		}
		return enqueue(ctx, q, task, opts...)
	}
}

// RetryWrite handles resident:retry-write.
func (h *Handlers) RetryWrite(ctx context.Context, t *asynq.Task) error {
	var p RetryWritePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return fmt.Errorf("bad %s payload: %v: %w", TypeRetryWrite, err, asynq.SkipRetry)
	}
	st, err := h.store.RowState(ctx, p.ImportID, p.Row)
	if err != nil || st.Resolved || st.Stopped != "" {
		return err
	}
	if st.JobID != "" {
		// Redelivered after the new job was stored: follow it.
		return h.scheduleCheck(ctx, SubmitPayload{ImportID: p.ImportID, Row: p.Row, Line: p.Line, Resident: importer.Resident{IntegrationID: p.IntegrationID}}, st.JobID, max(st.Check, 1))
	}
	if err := h.take(ctx, p.ImportID, 1); err != nil {
		return err
	}
	jobID, err := h.api.RetryWrite(ctx, p.JobID)
	h.countRequest(ctx, p.ImportID, importer.EndpointRetryWrite, err)
	if err != nil {
		return h.retryWriteFailed(ctx, p, err)
	}
	if err := h.store.SetJob(ctx, p.ImportID, p.Row, jobID, h.webhooksExpected()); err != nil {
		return err
	}
	return h.scheduleCheck(ctx, SubmitPayload{ImportID: p.ImportID, Row: p.Row, Line: p.Line, Resident: importer.Resident{IntegrationID: p.IntegrationID}}, jobID, 1)
}

func (h *Handlers) retryWriteFailed(ctx context.Context, p RetryWritePayload, err error) error {
	apiErr, ok := asAPIError(err)
	if !ok {
		return err
	}
	fail := func(code, msg string) error {
		return h.resolve(ctx, p.ImportID, importer.RowResult{Row: p.Row, Line: p.Line, Outcome: importer.Failed, JobID: p.JobID, ErrorCode: code, Error: msg})
	}
	switch {
	case apiErr.Kind == importer.KindUnauthorized:
		return h.stopImport(ctx, p.ImportID, apiErr)
	case apiErr.Kind == importer.KindRateLimited:
		return &waitError{after: rateLimitWait(err), err: err}
	case apiErr.Kind == importer.KindRejected || apiErr.Kind == importer.KindNotFound:
		return fail(orDefault(apiErr.Code, importer.CodeWriteFailed), "the API would not retry the write: "+orDefault(apiErr.Message, apiErr.Error()))
	case apiErr.MaybeSent:
		// A retry may have started a new job: retrying again could write
		// the resident twice.
		return fail(importer.CodeInDoubt, fmt.Sprintf("the retry of write %s may have reached the API but its answer was lost; check the PMS before retrying this row", p.JobID))
	case lastAttempt(ctx):
		return fail(importer.CodeRetriesSpent, "the API could not be reached to retry the write: "+apiErr.Error())
	}
	h.count(ctx, p.ImportID, importer.StatRetries)
	return err
}
