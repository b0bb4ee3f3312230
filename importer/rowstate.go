package importer

import "errors"

// This file holds the types the lifecycle's Store port speaks in: where a
// row stands (RowState), what recording an outcome did (Resolution), and
// where an import's feed stands (FeedState). The store implements them on
// Redis; the lifecycle decides with them.

// ErrFeedSuperseded is returned to a feed of a generation that a newer split
// replaced.
var ErrFeedSuperseded = errors.New("a newer feed took over")

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
	// Ceiling, when not "", is the integration whose writes in flight the
	// row's write counted among (see Admit): the caller releases its place
	// there (ReleasePlace). The import's own record of it is gone already.
	Ceiling string
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
	// Queued: the feed queued the row's write (or a retry took it back
	// to be sent again), and nothing was sent.
	Queued bool
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

// Phase is the row's phase in its lifecycle (see Next).
func (s RowState) Phase() Phase {
	switch {
	case s.Resolved:
		return PhaseResolved
	case s.Sending && s.RetryOf != "":
		return PhaseSendingRetry
	case s.Sending:
		return PhaseSending
	case s.JobID != "" && s.Check > 0:
		return PhaseFollowing
	case s.JobID != "":
		return PhaseParked
	case s.RetryOf != "":
		return PhaseRetryQueued
	case s.LookFirst:
		return PhaseLookFirst
	case s.Queued:
		return PhaseQueued
	}
	return PhaseUnfed
}
