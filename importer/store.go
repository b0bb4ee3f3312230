package importer

import (
	"context"
	"errors"
	"time"
)

// ErrImportNotFound is returned for an import id the store does not know.
var ErrImportNotFound = errors.New("import not found")

// ErrFeedSuperseded is returned to a feed of a generation that a newer split
// replaced.
var ErrFeedSuperseded = errors.New("a newer feed took over")

// ErrNotToSend is returned by MarkSending for a row that must not be sent
// (any more): it has its outcome, or its import was cancelled.
var ErrNotToSend = errors.New("the row is not to be sent")

// Resolution is what recording a row's outcome did.
type Resolution struct {
	// Recorded: this call recorded the outcome (an earlier one had not).
	Recorded bool
	// Done: every row of the import has its outcome.
	Done bool
	// Stale: the outcome was of a write job the row no longer follows
	// (news of its older job, after a retry): nothing was recorded.
	Stale bool
	// WakeGen and WakeSeq, when not zero, name the feed task that waits
	// for room in the window: there is room now, and it should run.
	WakeGen, WakeSeq int
}

// FeedState is where an import's feed stands: the feed queues an import's
// rows a window at a time (see jobs.Feed).
type FeedState struct {
	// Gen is the feed's generation: each split of the file starts one.
	Gen int
	// Cursor is the first row the feed has not passed; Total, the rows.
	Cursor, Total int
	// Fed counts the rows queued, Landed those of them resolved since.
	Fed, Landed int
	// Stopped is true while the import is stopped.
	Stopped bool
}

// InFlight is the number of rows queued and not yet resolved.
func (f FeedState) InFlight() int { return f.Fed - f.Landed }

// RowState is where a row stands between its split and its outcome.
type RowState struct {
	// Sending: a create was being sent and its answer never came back
	// (the worker died, or the request timed out after it was written).
	Sending bool
	// Lookups counts the searches for a Sending row's resident that found
	// nothing yet.
	Lookups int
	// JobID is the write's job id once the API answered the create.
	JobID string
	// RetryOf is the failed write job that 'importer retry' retries
	// through retry-write for the row: waiting to be sent, or, when
	// Sending, being sent.
	RetryOf string
	// Check is the number of the status check that is scheduled for the
	// job; 0 when none is (the import stopped while following it).
	Check int
	// Resolved is true once the row has its outcome.
	Resolved bool
	// LookFirst: the row's create may have reached the API before; look
	// its resident up before sending it.
	LookFirst bool
	// Stopped holds the reason when the whole import has stopped.
	Stopped string
	// Cancelled is true once the import was cancelled: rows not sent yet
	// are not sent.
	Cancelled bool
	// Gone is true when the store no longer knows the import at all: its
	// state was lost (Redis restarted empty, or flushed) or deleted. Its
	// rows must not be sent: nothing could record what became of them.
	Gone bool
}

// RetryAction is what 'importer retry' does with a row that failed for a
// reason worth another try.
type RetryAction int

// The retry actions.
const (
	// Resend sends the create again: it certainly never reached the API.
	Resend RetryAction = iota
	// RetryWrite retries the failed write through the API's retry-write.
	RetryWrite
	// FollowJob reads the status of the row's write job again.
	FollowJob
	// LookUpThenSend looks the row's resident up, adopts it when found
	// and sends the create when not: for a row whose create may have
	// reached the API.
	LookUpThenSend
)

// RetryPlan is a row to try again: its failed result and what to do.
type RetryPlan struct {
	Result RowResult
	Action RetryAction
}

// Stat names of the counters an import keeps beside its outcomes.
const (
	StatStatusChecks = "status_checks"
	StatRateLimited  = "responses_429"
	StatRetries      = "retries"
	StatThrottled    = "rate_limit_waits"
	StatWebhooks     = "webhooks"
)

// StatRequests is the counter of API requests made to an endpoint.
func StatRequests(endpoint string) string { return "requests:" + endpoint }

// Store keeps the state of imports. Every method is safe to call twice with
// the same arguments: tasks are delivered at least once.
type Store interface {
	// Import returns the import, or ErrImportNotFound.
	Import(ctx context.Context, id string) (Import, error)
	// RowState returns the state of one row of an import.
	RowState(ctx context.Context, importID string, row int) (RowState, error)
	// MarkSending records that a create (or, with retryOf, the retry-write
	// of that failed job) is about to be sent for the row — unless the row
	// has its outcome or the import was cancelled (ErrNotToSend), or the
	// import is gone (ErrImportNotFound): then nothing may be sent.
	MarkSending(ctx context.Context, importID string, row int, retryOf string) error
	// MarkLookups records how many searches for a Sending row's resident
	// have found nothing.
	MarkLookups(ctx context.Context, importID string, row, n int) error
	// Unsend forgets that a create (or the retry-write of job retryOf) was
	// being sent for the row: the API answered with an error, or the
	// request never left.
	Unsend(ctx context.Context, importID string, row int, retryOf string) error
	// SetJob records the write's job id with status check number 1 and,
	// when webhooks are expected, indexes the job so that a webhook finds
	// its row (JobRow).
	// The counters named by stats are added one to in the same round trip.
	SetJob(ctx context.Context, importID string, row int, jobID string, forWebhooks bool, stats ...string) error
	// AdvanceCheck moves the row's status check number from `from` to
	// `to` if it still is `from`, and reports whether it did.
	AdvanceCheck(ctx context.Context, importID string, row int, from, to int) (bool, error)
	// CancelUnsent records that a row of a cancelled import was never sent
	// (outcome cancelled), unless it is being sent or followed, or has its
	// outcome already.
	CancelUnsent(ctx context.Context, importID string, result RowResult) (Resolution, error)
	// Resolve records a row's outcome and counts it, once: a second call for
	// the same row changes nothing. It reports whether this call recorded
	// the outcome, whether every row of the import now has one, and whether
	// the import's feed waits for the room this row made.
	// The counters named by stats are added one to in the same round trip.
	Resolve(ctx context.Context, importID string, result RowResult, stats ...string) (Resolution, error)
	// ResolveJob is Resolve for news of the row's write job
	// result.JobID (a status read, a webhook): while the row follows
	// another job (it was retried since), the news is stale and nothing is
	// recorded.
	ResolveJob(ctx context.Context, importID string, result RowResult, stats ...string) (Resolution, error)
	// Stop marks the import stopped with a reason, unless it already is.
	Stop(ctx context.Context, importID, reason string) error
	// Count adds one to each of the import's counters given (see the Stat
	// names).
	Count(ctx context.Context, importID string, stats ...string) error
	// Finish records that the import's report was written.
	Finish(ctx context.Context, importID string, at time.Time) error
	// Replace changes a row's outcome from `from` to the result's, and
	// counts the change; nothing happens when the row's outcome is not
	// `from`. When the import had finished it is opened again (its Round
	// grows) and reopened tells so: its report must be written again.
	Replace(ctx context.Context, importID string, result RowResult, from Outcome) (changed, reopened bool, err error)
	// JobRow finds the row of a write job; ok is false for a job the
	// importer does not know (yet).
	JobRow(ctx context.Context, jobID string) (importID string, row int, ok bool, err error)
	// SaveJobEvent keeps a webhook's news of a job not (yet) known, for the
	// row to pick up when its job id is stored; JobEvent reads it.
	SaveJobEvent(ctx context.Context, ev WriteEvent) error
	JobEvent(ctx context.Context, jobID string) (WriteEvent, bool, error)
}

// Summary is the account of a finished (or running) import, as summary.json
// and the command line show it.
type Summary struct {
	ImportID       string          `json:"import_id"`
	File           string          `json:"file"`
	Vendor         Vendor          `json:"vendor"`
	Total          int             `json:"total"`
	Counts         map[Outcome]int `json:"counts"`
	UnknownColumns []string        `json:"unknown_columns"`
	IgnoredColumns []string        `json:"ignored_columns,omitempty"`
	Requests       map[string]int  `json:"api_requests"`
	RateLimited    int             `json:"responses_429"`
	StatusChecks   int             `json:"status_checks"`
	Retries        int             `json:"retries"`
	RateLimitWaits int             `json:"rate_limit_waits"`
	Webhooks       int             `json:"webhooks"`
	Stopped        string          `json:"stopped,omitempty"`
	Cancelled      bool            `json:"cancelled,omitempty"`
	StartedAt      time.Time       `json:"started_at"`
	FinishedAt     time.Time       `json:"finished_at,omitzero"`
	Seconds        float64         `json:"duration_seconds"`
}

// NewSummary builds an import's summary from its record, progress and
// counters.
func NewSummary(imp Import, p Progress, stats map[string]int) Summary {
	s := Summary{
		ImportID:       imp.ID,
		File:           imp.File,
		Vendor:         imp.Options.Vendor,
		Total:          p.Total,
		Counts:         make(map[Outcome]int, len(Outcomes)),
		UnknownColumns: imp.UnknownColumns,
		IgnoredColumns: imp.IgnoredColumns,
		Requests:       map[string]int{},
		RateLimited:    stats[StatRateLimited],
		StatusChecks:   stats[StatStatusChecks],
		Retries:        stats[StatRetries],
		RateLimitWaits: stats[StatThrottled],
		Webhooks:       stats[StatWebhooks],
		Stopped:        imp.Stopped,
		Cancelled:      !imp.CancelledAt.IsZero(),
		StartedAt:      imp.CreatedAt,
		FinishedAt:     imp.FinishedAt,
	}
	if s.UnknownColumns == nil {
		s.UnknownColumns = []string{}
	}
	for _, o := range Outcomes {
		s.Counts[o] = p.Counts[o]
	}
	for _, e := range []string{EndpointCreate, EndpointWriteStatus, EndpointGetResident, EndpointListResidents, EndpointRetryWrite} {
		s.Requests[e] = stats[StatRequests(e)]
	}
	end := imp.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	s.Seconds = end.Sub(imp.CreatedAt).Round(time.Millisecond).Seconds()
	return s
}

// AllSucceeded reports whether every row of the import succeeded.
func (s Summary) AllSucceeded() bool {
	return s.Total >= 0 && s.Counts[Succeeded] == s.Total
}
