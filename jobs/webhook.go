package jobs

import (
	"context"
	"strings"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// ApplyEvent resolves a row from a webhook's news of its write job. It is
// idempotent: a duplicate delivery changes nothing, and news of a job the
// row no longer follows (an older job of a row retried since, delivered
// late or again) changes nothing either. A job the importer does
// not know yet (the webhook beat the create's answer) is kept, and the row
// picks the news up when its job id is stored or at its next status check.
// Deliveries may come in any order: a partial success that arrives after the
// DATA_NEW of the same write still turns the row partial.
//
// Whether a DATA_NEW's root_job_id is the write's job id is not documented
// (the documented example's is a sync job's): a DATA_NEW naming a job the
// importer does not know is matched to the create that wrote its record,
// by the record's x_id or email within its integration. A DATA_UPDATE (an
// update read back: there is no update-success event) naming a job the
// importer does not know is matched to the update of its record, and
// taken only when the record holds what the update sent: the PMS's own
// changes to the resident send DATA_UPDATE too.
func (rw *RowWork) ApplyEvent(ctx context.Context, ev importer.WriteEvent) error {
	importID, row, ok, err := rw.store.JobRow(ctx, ev.JobID)
	if err != nil {
		return err
	}
	for _, key := range ev.RecordKeys() {
		if ok || ev.State != importer.WriteSuccess {
			break
		}
		var jobID string
		if importID, row, jobID, ok, err = rw.store.JobOfRecord(ctx, key); err != nil {
			return err
		}
		if ok && ev.Updated {
			plans, err := rw.store.Plans(ctx, importID, []int{row})
			if err != nil {
				return err
			}
			if u, planned := plans[row]; !planned || !ev.Shows(u.Fields) {
				return nil // news of another change of the resident
			}
		}
		if ok {
			ev.JobID = jobID
		}
	}
	if !ok {
		return rw.store.SaveJobEvent(ctx, ev)
	}
	return rw.applyEvent(ctx, importID, row, 0, ev)
}

func (rw *RowWork) applyEvent(ctx context.Context, importID string, row, line int, ev importer.WriteEvent) error {
	r := importer.RowResult{Row: row, Line: line, JobID: ev.JobID, RecordID: ev.RecordID, At: time.Now().UTC()}
	switch ev.State {
	case importer.WriteSuccess:
		r.Outcome = importer.Succeeded
	case importer.WritePartialSuccess:
		r.Outcome, r.ErrorCode = importer.Partial, importer.CodePartial
		r.Error = orDefault(strings.Join(ev.Errors, "; "), "the PMS accepted part of the write")
	case importer.WriteFailure:
		r.Outcome, r.ErrorCode = importer.Failed, importer.FailureCode(ev.Errors)
		r.Error = orDefault(strings.Join(ev.Errors, "; "), "the PMS rejected the write without a message")
	default:
		return nil
	}
	rw.count(ctx, importID, importer.StatWebhooks)
	res, err := rw.record(ctx, importID, jobNews(r.JobID), r)
	if err != nil {
		return err
	}
	if res.Stale {
		if res.Was == importer.PhaseSending || res.Was == importer.PhaseSendingRetry {
			// The job's index can land a moment before the row follows
			// the job (a cluster writes it first): keep the news for the
			// sender, which reads it once the row follows.
			return rw.store.SaveJobEvent(ctx, ev)
		}
		return nil // news of a job the row no longer follows changes nothing
	}
	// A partial write sends WRITE_OPERATION_FAILURE and DATA_NEW, in
	// either order: the row ends partial, with the record id.
	var reopened bool
	switch r.Outcome {
	case importer.Partial:
		_, reopened, err = rw.store.Replace(ctx, importID, r, importer.Succeeded)
	case importer.Succeeded:
		late := importer.RowResult{Row: r.Row, Outcome: importer.Partial, JobID: r.JobID, RecordID: r.RecordID, At: r.At}
		_, reopened, err = rw.store.Replace(ctx, importID, late, importer.Partial)
	}
	if err != nil || !reopened {
		return err
	}
	return rw.finalize(ctx, importID)
}

// pendingEvent applies a webhook's news kept for a job before its row knew
// it, and reports whether there was one.
func (rw *RowWork) pendingEvent(ctx context.Context, importID string, row, line int, jobID string) (bool, error) {
	if !rw.webhooksExpected() {
		return false, nil // no webhooks come: no read for them
	}
	ev, ok, err := rw.store.JobEvent(ctx, jobID)
	if err != nil || !ok {
		return false, err
	}
	return true, rw.applyEvent(ctx, importID, row, line, ev)
}
