package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// TypeSubmit sends one resident's create (or planned update) to the write
// API.
const TypeSubmit = "resident:submit"

// SubmitPayload is the payload of a resident:submit task. It holds the
// resident's data but never a credential.
type SubmitPayload struct {
	ImportID string            `json:"import_id"`
	Row      int               `json:"row"`
	Line     int               `json:"line,omitempty"`
	Vendor   importer.Vendor   `json:"vendor"`
	Resident importer.Resident `json:"resident"`
	// Deadline, FollowFor and Verify are the import's, carried so that
	// scheduling the row's status checks costs no read of the import.
	// FollowFor is its --deadline: how long a write is followed after it
	// is sent (see followedUntil); Deadline, when the import's own
	// deadline passes, stands in for it in tasks queued without it.
	Deadline  time.Time     `json:"deadline,omitzero"`
	FollowFor time.Duration `json:"follow_for,omitempty"`
	Verify    bool          `json:"verify,omitempty"`
	// Round is the import's round the task was queued in.
	Round int `json:"round,omitempty"`
	// LookFirst: the row may have been sent before its import's state was
	// lost (see importer.Recovery); look its resident up before sending.
	LookFirst bool `json:"look_first,omitempty"`
	// Update, when set, is the row's planned update (see Plan): the row
	// updates that resident instead of creating one.
	Update *importer.Update `json:"update,omitempty"`
	// Priority is the import's, for its turns beside other imports.
	Priority importer.Priority `json:"priority,omitempty"`
}

// followedUntil is when a write sent at sent is given up as timed_out if
// it is still PENDING: --deadline after it was sent. A write sent late (its
// workers killed, a long queue, a retry round) is followed as long as one
// sent at once, never given up at its first look.
func (p SubmitPayload) followedUntil(sent time.Time) time.Time {
	if p.FollowFor > 0 {
		return sent.Add(p.FollowFor)
	}
	return p.Deadline
}

// SubmitTaskID is the deterministic id of a row's submit task in a round
// of its import, so a second split of the same file cannot enqueue the row
// twice. A retry round has ids of its own: an earlier round's task (kept in
// the archive, say) cannot stand in for it.
func SubmitTaskID(importID string, row, round int) string {
	id := "submit:" + importID + ":" + strconv.Itoa(row)
	if round > 0 {
		id += ":r" + strconv.Itoa(round)
	}
	return id
}

// NewSubmitTask returns a row's submit task and its options.
func NewSubmitTask(p SubmitPayload, maxRetry int) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, fmt.Errorf("error encoding the submit of row %d: %w", p.Row, err)
	}
	opts := []asynq.Option{
		asynq.TaskID(SubmitTaskID(p.ImportID, p.Row, p.Round)),
		asynq.Queue(QueueSubmit),
		asynq.MaxRetry(maxRetry),
		asynq.Timeout(2 * time.Minute),
	}
	return asynq.NewTask(TypeSubmit, b), opts, nil
}

// Submit handles resident:submit, as the lifecycle's table says (see
// importer.Next) for the row's phase: resolved, or the import stopped →
// nothing to do; a job id already stored → the create was sent, go on to
// status checks (no second POST); a create that was being sent when its
// answer was lost → look the resident up instead of sending it again; a
// cancelled import's row not sent → cancelled. Otherwise it sends the
// write, stores the job id, and only then schedules the first status
// check.
func (rw *RowWork) Submit(ctx context.Context, p SubmitPayload) error {
	st, err := rw.store.RowState(ctx, p.ImportID, p.Row)
	if err != nil {
		return err
	}
	if st.Gone {
		// Redis lost the import (or it was deleted): nothing could record
		// what became of the row, so it is not sent. Running the import's
		// file again recovers it.
		rw.log.WarnContext(ctx, "the import is gone from Redis: its row is not sent", "import_id", p.ImportID, "row", p.Row)
		return nil
	}
	phase := st.Phase()
	event := importer.SubmitEvent(p.Update != nil, p.LookFirst, st.Stopped != "", st.Cancelled)
	t, ok := importer.Next(phase, event)
	switch {
	case !ok:
		return nil // resolved already, or parked while the import is stopped
	case t.Has(importer.EffectRecord):
		_, err := rw.move(ctx, p.ImportID, phase, event, importer.Move{Row: p.Row, Result: cancelled(p)})
		return err
	case t.Has(importer.EffectScheduleCheck) && phase == importer.PhaseParked:
		// The import stopped while the job was followed; follow it again.
		m, err := rw.move(ctx, p.ImportID, phase, event, importer.Move{Row: p.Row, FromJob: st.JobID, Job: st.JobID, Check: 1})
		if err != nil || !m.Moved {
			return err // moved since: by another delivery of this task, or resolved
		}
		return rw.scheduleCheck(ctx, p, st.JobID, 1)
	case t.Has(importer.EffectScheduleCheck):
		// Delivered again after the job id was stored: the chain of
		// checks exists; make sure its current link is on the queue.
		return rw.scheduleCheck(ctx, p, st.JobID, st.Check)
	case t.Has(importer.EffectLookUp) && !phase.MaySendAgain():
		// The write may have reached the API without its answer.
		return rw.settleInDoubt(ctx, p, st)
	case t.Has(importer.EffectLookUp):
		// Its create may have reached the API before: a row in doubt,
		// tried again, or recovered after its import's state was lost.
		// Adopt its resident when it exists; else send it.
		why, recovery := "its create may have reached the API before", false
		if phase != importer.PhaseLookFirst {
			why, recovery = "the import's state was lost (Redis lost its data) after this row may have been sent", true
		}
		if done, err := rw.adoptIfSent(ctx, p, why, recovery); done || err != nil {
			return err
		}
		if t, _ = importer.Next(phase, importer.RowNotFound); !t.Has(importer.EffectSend) {
			return fmt.Errorf("row %d: the lifecycle sends no write after a look-up found nothing in phase %s", p.Row, phase)
		}
	case !t.Has(importer.EffectSend):
		return nil // the row is sent when the import is run again
	}

	// Send the create; or, for a row 'importer retry' retries through the
	// API's retry-write, the retry of its failed write.
	endpoint, send := importer.EndpointCreate, func() (string, error) { return rw.api.CreateResident(ctx, p.Vendor, p.Resident) }
	if u := p.Update; u != nil {
		endpoint, send = importer.EndpointUpdate, func() (string, error) { return rw.api.UpdateResident(ctx, u.RecordID, u.Fields) }
	}
	if st.RetryOf != "" {
		endpoint, send = importer.EndpointRetryWrite, func() (string, error) { return rw.api.RetryWrite(ctx, st.RetryOf) }
	}
	if err := rw.waitTurn(ctx, p); err != nil {
		return err
	}
	if err := rw.admit(ctx, p); err != nil {
		return err
	}
	if err := rw.take(ctx, p.ImportID, 1); err != nil {
		return err
	}
	rw.tookTurn(ctx, p)
	mark, err := rw.move(ctx, p.ImportID, phase, importer.RowSendStarted, importer.Move{Row: p.Row, FromJob: st.RetryOf, Job: st.RetryOf})
	switch {
	case errors.Is(err, importer.ErrImportNotFound):
		return nil
	case errors.Is(err, importer.ErrNotReplicated):
		// A replica of Redis is behind: sent once one confirms the mark,
		// without spending the row's retries.
		return &waitError{after: 2 * time.Second, err: errors.Join(err, rw.store.Release(ctx, p.ImportID, p.Row))}
	case err != nil:
		return err
	case mark.Cancelled:
		// Cancelled since the row's state was read: it is not sent.
		return errors.Join(rw.store.Release(ctx, p.ImportID, p.Row), rw.resolve(ctx, p.ImportID, cancelled(p)))
	case !mark.Moved:
		// Moved since the row's state was read (resolved, or another
		// delivery of this task sends it): it is not sent from here.
		rw.log.DebugContext(ctx, "the row moved since it was read: not sent", "import_id", p.ImportID, "row", p.Row, "phase", mark.Was)
		return rw.store.Release(ctx, p.ImportID, p.Row)
	}
	sending, _ := importer.Next(phase, importer.RowSendStarted)
	jobID, err := send()
	if err != nil {
		rw.countRequest(ctx, p.ImportID, endpoint, err)
		return rw.submitFailed(ctx, p, sending.To, st.RetryOf, err)
	}
	// The job id and the request's count, in one round trip.
	recordKey := importer.RecordKey(p.Resident.IntegrationID, p.Resident.Email1, p.Resident.XID)
	if p.Update != nil {
		recordKey = importer.UpdateKey(p.Resident.IntegrationID, p.Update.RecordID)
	}
	sent, err := rw.move(ctx, p.ImportID, sending.To, importer.RowSent, importer.Move{Row: p.Row, FromJob: st.RetryOf, Job: jobID, Check: 1,
		ForWebhooks: rw.webhooksExpected(), RecordKey: recordKey, Stats: []string{importer.StatRequests(endpoint), importer.StatWritesAnswered}})
	if err != nil {
		return err // the retry finds the row "sending" and looks it up
	}
	if !sent.Moved {
		// Only a look-up of another delivery of this task moves a row
		// sending: it found the resident this write made, or gave up.
		rw.log.WarnContext(ctx, "the row was settled while its write was sent: the write's job is not followed", "import_id", p.ImportID, "row", p.Row, "job_id", jobID, "phase", sent.Was)
		return nil
	}
	rw.log.DebugContext(ctx, "write submitted", "import_id", p.ImportID, "row", p.Row, "job_id", jobID, "retry_of", st.RetryOf)
	if applied, err := rw.pendingEvent(ctx, p.ImportID, p.Row, p.Line, jobID); applied || err != nil {
		return err // a webhook was faster than the answer
	}
	return rw.scheduleCheck(ctx, p, jobID, 1)
}

// turnSlack is how far, in turns, an import may run ahead of the slowest
// import sending beside it: 4 creates of a normal import, 8 of a high one.
const turnSlack = 2.0

// waitTurn holds a write back, without spending the row's retries, while
// its import is ahead of its weight's share of the creates sent beside the
// other imports (see store.Turn): the rate limit's tokens then go to the
// imports behind, in proportion to their weights, instead of to whichever
// waiting task asks first. Only with a rate limit: without one, nothing is
// shared.
func (rw *RowWork) waitTurn(ctx context.Context, p SubmitPayload) error {
	if rw.cfg.Limiter == nil {
		return nil
	}
	ok, err := rw.store.Turn(ctx, p.ImportID, p.Priority.Weight(), turnSlack, time.Now())
	if err != nil || ok {
		return err
	}
	return &waitError{after: 200*time.Millisecond + rand.N(300*time.Millisecond),
		err: fmt.Errorf("row %d waits: its import is ahead of its share beside the others", p.Row)}
}

// tookTurn counts the write its turn; a count lost is a turn given away.
func (rw *RowWork) tookTurn(ctx context.Context, p SubmitPayload) {
	if rw.cfg.Limiter == nil {
		return
	}
	if err := rw.store.Sent(ctx, p.ImportID, p.Priority.Weight(), time.Now()); err != nil {
		rw.log.WarnContext(ctx, "cannot count the import's turn", "import_id", p.ImportID, "error", err)
	}
}

// admit takes a place among the writes in flight of the row's integration
// when it has a ceiling; with every place taken, the submit waits (without
// spending its retries) and looks again in a second or two.
func (rw *RowWork) admit(ctx context.Context, p SubmitPayload) error {
	integration := p.Resident.IntegrationID
	limit := rw.cfg.Ceilings.Of(integration)
	if limit <= 0 {
		return nil
	}
	deadline := p.followedUntil(time.Now())
	if deadline.IsZero() {
		deadline = time.Now().Add(importer.DefaultDeadline)
	}
	ok, err := rw.store.Admit(ctx, integration, p.ImportID, p.Row, limit, deadline)
	if err != nil || ok {
		return err
	}
	return &waitError{after: time.Second + rand.N(time.Second),
		err: fmt.Errorf("row %d waits: integration %s has %d writes in flight, its ceiling", p.Row, integration, limit)}
}

// cancelled is the outcome of a row a cancel kept from being sent.
func cancelled(p SubmitPayload) importer.RowResult {
	return importer.RowResult{Row: p.Row, Line: p.Line, Outcome: importer.Cancelled, ErrorCode: importer.CodeCancelled, Error: "not sent: the import was cancelled"}
}

// submitFailed decides what a failed create (or, with retryOf, a failed
// retry-write of that job) means for the row.
func (rw *RowWork) submitFailed(ctx context.Context, p SubmitPayload, phase importer.Phase, retryOf string, err error) error {
	apiErr, ok := asAPIError(err)
	if !ok {
		return err
	}
	// An update sent twice changes nothing the second time: one that may
	// have reached the API is sent again, like one that never left.
	maybeSent := apiErr.MaybeSent && (p.Update == nil || retryOf != "")
	if !maybeSent {
		// The API answered, or the request never left: nothing was
		// created, so the row may be sent again.
		if _, uerr := rw.move(ctx, p.ImportID, phase, importer.RowSendFailed, importer.Move{Row: p.Row, FromJob: retryOf, Job: retryOf}); uerr != nil {
			return uerr
		}
		if uerr := rw.store.Release(ctx, p.ImportID, p.Row); uerr != nil {
			return uerr
		}
	}
	switch apiErr.Kind {
	case importer.KindRejected, importer.KindNotFound:
		r := importer.RowResult{
			Row: p.Row, Line: p.Line, Outcome: importer.Failed,
			ErrorCode: orDefault(apiErr.Code, fmt.Sprintf("http_%d", apiErr.Status)),
			Error:     orDefault(apiErr.Message, apiErr.Error()),
		}
		if retryOf != "" {
			// The failed job stays the row's: its write may be retried
			// later, never sent afresh from failed.csv.
			r.JobID, r.Error = retryOf, "the API would not retry the write: "+r.Error
		}
		if err := rw.resolve(ctx, p.ImportID, r); err != nil || retryOf != "" || apiErr.Kind != importer.KindRejected {
			return err
		}
		return rw.refusedAlike(ctx, p.ImportID, r)
	case importer.KindUnauthorized:
		return rw.stopImport(ctx, p.ImportID, apiErr)
	case importer.KindRateLimited:
		return &waitError{after: rateLimitWait(err), err: err}
	}
	if maybeSent {
		// The create may have reached the API (a 5xx after the write, a
		// timeout, a lost answer): it is never sent again blindly. Its
		// write, if it was made, is PENDING for a while; look the
		// resident up once it has had time to resolve.
		if _, err := rw.move(ctx, p.ImportID, phase, importer.RowMaybeSent, importer.Move{Row: p.Row, FromJob: retryOf, Job: retryOf, Lookups: 1}); err != nil {
			return err
		}
		return &waitError{after: rw.cfg.LookupWaits[0], err: fmt.Errorf("row %d: the create may have reached the API; looking the resident up before anything else: %w", p.Row, apiErr)}
	}
	rw.count(ctx, p.ImportID, importer.StatRetries)
	if lastAttempt(ctx) {
		// The API has been out of reach through the whole retry budget:
		// every other row would go the same way. The import stops, this
		// row unsent (it never left), and resumes when run again (a
		// schedule's next firing does).
		reason := "the API could not be reached through every retry (" + apiErr.Error() + "); run the same command again to resume once it answers"
		return rw.stop(ctx, p.ImportID, importer.EventStopped, reason)
	}
	return err
}

// DefaultLookupWaits are the waits between searches for a resident whose
// create may have reached the API: the write may still be PENDING, and its
// resident appears only once it resolves. About seven minutes in all.
var DefaultLookupWaits = []time.Duration{20 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute}

// settleInDoubt handles a row whose create may have reached the API without
// its answer coming back. The API has no idempotency key, so the row is never
// sent again blindly: the resident is looked up (by email, else by name and
// date of birth) and adopted when found. Not found, it is looked up again
// later, in case the write is still PENDING; still not found, the row fails
// as in_doubt, saying what to check.
func (rw *RowWork) settleInDoubt(ctx context.Context, p SubmitPayload, st importer.RowState) error {
	lookups := st.Lookups
	q := importer.QueryFor(p.Resident)
	if q.Email == "" && (q.FirstName == "" || q.LastName == "") {
		return rw.resolve(ctx, p.ImportID, inDoubt(p, "it has neither an email nor a full name to look it up by"))
	}
	matches, err := rw.lookUp(ctx, p.ImportID, q)
	if err != nil {
		return rw.lookupFailed(ctx, p, err)
	}
	switch {
	case len(matches) == 1:
		return rw.resolve(ctx, p.ImportID, importer.RowResult{
			Row: p.Row, Line: p.Line, Outcome: importer.Succeeded, RecordID: matches[0].ID,
			Error: "adopted the existing resident: the answer to the create was lost",
		})
	case len(matches) > 1:
		return rw.resolve(ctx, p.ImportID, inDoubt(p, fmt.Sprintf("%d residents with this name already exist", len(matches))))
	}
	waits := rw.lookupWaits(p.Vendor)
	if lookups < len(waits) {
		if _, err := rw.move(ctx, p.ImportID, st.Phase(), importer.RowNotFound, importer.Move{Row: p.Row, FromJob: st.RetryOf, Job: st.RetryOf, Lookups: lookups + 1}); err != nil {
			return err
		}
		return &waitError{after: waits[lookups], err: fmt.Errorf("row %d: resident not found yet; looking again later", p.Row)}
	}
	var spent time.Duration
	for _, w := range waits {
		spent += w
	}
	checked := fmt.Sprintf("it was not found by %s in %d searches over %v", lookupKey(q), len(waits)+1, spent)
	if rw.cfg.CacheLag.For(string(p.Vendor)) == importer.UntilSync {
		return rw.resolve(ctx, p.ImportID, inDoubt(p, checked+", but this PMS's records show in the API only after its next sync, so that is no proof; run 'importer retry --in-doubt' after the next sync"))
	}
	return rw.resolve(ctx, p.ImportID, inDoubt(p, checked+" (past the cache lag), so the create probably never arrived"))
}

// lookupWaits are the waits between the searches for a lost answer's
// resident: LookupWaits, lengthened (doubling, ten minutes at most) until
// the last search comes after the vendor's cache lag, when not finding
// the resident means something.
func (rw *RowWork) lookupWaits(vendor importer.Vendor) []time.Duration {
	waits := rw.cfg.LookupWaits
	lag := rw.cfg.CacheLag.For(string(vendor))
	var total time.Duration
	for _, w := range waits {
		total += w
	}
	if lag <= 0 || total >= lag+waits[0] {
		return waits
	}
	waits = slices.Clone(waits)
	for total < lag+waits[0] {
		w := min(2*waits[len(waits)-1], 10*time.Minute)
		waits, total = append(waits, w), total+w
	}
	return waits
}

// adoptIfSent looks up the resident of a row that may have been sent
// before (why says how): found, the row succeeds with it (done is true);
// several, the row is in doubt; none, the caller sends the row. A recovery
// (not a user's 'retry --in-doubt', run once the PMS has synced) of a
// vendor whose records show only after a sync cannot trust not finding it:
// the row is in doubt.
func (rw *RowWork) adoptIfSent(ctx context.Context, p SubmitPayload, why string, recovery bool) (done bool, err error) {
	q := importer.QueryFor(p.Resident)
	if q.Email == "" && (q.FirstName == "" || q.LastName == "") {
		return true, rw.resolve(ctx, p.ImportID, inDoubt(p, "it has neither an email nor a full name to look it up by"))
	}
	matches, err := rw.lookUp(ctx, p.ImportID, q)
	switch {
	case err != nil:
		return true, rw.lookupFailed(ctx, p, err)
	case len(matches) == 1:
		return true, rw.resolve(ctx, p.ImportID, importer.RowResult{
			Row: p.Row, Line: p.Line, Outcome: importer.Succeeded, RecordID: matches[0].ID,
			Error: "adopted the existing resident: " + why,
		})
	case len(matches) > 1:
		return true, rw.resolve(ctx, p.ImportID, inDoubt(p, fmt.Sprintf("%d residents with this name already exist", len(matches))))
	case recovery && rw.cfg.CacheLag.For(string(p.Vendor)) == importer.UntilSync:
		return true, rw.resolve(ctx, p.ImportID, inDoubt(p, "it was not found by "+lookupKey(q)+", but this PMS's records show in the API only after its next sync, so that is no proof; run 'importer retry --in-doubt' after the next sync"))
	}
	return false, nil
}

func (rw *RowWork) lookupFailed(ctx context.Context, p SubmitPayload, err error) error {
	apiErr, ok := asAPIError(err)
	var w *waitError
	switch {
	case errors.As(err, &w):
		return err // the rate limit: look up later
	case ok && apiErr.Kind == importer.KindUnauthorized:
		return rw.stopImport(ctx, p.ImportID, apiErr)
	case ok && apiErr.Kind == importer.KindRateLimited:
		return &waitError{after: rateLimitWait(err), err: err}
	case ok && apiErr.Kind == importer.KindUnavailable && !lastAttempt(ctx):
		return err
	case ctx.Err() != nil:
		return err
	}
	return rw.resolve(ctx, p.ImportID, inDoubt(p, "looking it up failed: "+err.Error()))
}

func inDoubt(p SubmitPayload, why string) importer.RowResult {
	return importer.RowResult{
		Row: p.Row, Line: p.Line, Outcome: importer.Failed, ErrorCode: importer.CodeInDoubt,
		Error: fmt.Sprintf("the create may have reached the API but its answer was lost, and %s; check whether %s %s (%s) exists in the PMS before sending this row again",
			why, p.Resident.FirstName, p.Resident.LastName, orDefault(p.Resident.Email1, "no email")),
	}
}

// refusedAlike stops an import whose first writes the API all refused with
// one error (importer.RefusedAlike): the others would be refused alike.
func (rw *RowWork) refusedAlike(ctx context.Context, importID string, r importer.RowResult) error {
	n, err := rw.store.Tally(ctx, importID, importer.StatWritesAnswered, importer.StatRefusedAlike(shortHash(r.ErrorCode+"\x00"+r.Error)))
	if err != nil || !importer.RefusedAlike(n[0], n[1]) {
		return err
	}
	reason := fmt.Sprintf("the API refused the first %d writes all alike (%s: %s): the other rows would be refused too; fix the file or the options (--vendor, the field defaults, a mapping), then run it again",
		importer.RefusedAlikeLimit, r.ErrorCode, r.Error)
	return rw.stop(ctx, importID, importer.EventStopped, reason)
}

func asAPIError(err error) (*importer.APIError, bool) {
	var apiErr *importer.APIError
	ok := err != nil && errors.As(err, &apiErr)
	return apiErr, ok
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
