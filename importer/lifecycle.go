package importer

import (
	"fmt"
	"slices"
	"strings"
)

// This file is a row's lifecycle as one table: the phases a row goes
// through between its split and its outcome, the events that move it, and
// what a worker does on each (its effects). Next is pure: the worker reads
// the row's phase (RowState.Phase), names what happened, and does what Next
// says. Asynq's TaskState and River's JobSetState* are the model: a state
// that is stored, transitions that are named, and waits that are first
// class (EffectRequeue), never a failure that spends a task's retries.

// Phase is where a row stands in its life.
type Phase string

// The phases of a row, in the order of a row's life.
const (
	// PhaseUnfed: split, not queued yet (the feed queues rows a window
	// at a time).
	PhaseUnfed Phase = "unfed"
	// PhaseQueued: its write (a create, or a planned update) is to be
	// sent; nothing was sent.
	PhaseQueued Phase = "queued"
	// PhaseLookFirst: its create may have reached the API before (a row
	// in doubt that 'importer retry --in-doubt' took): its resident is
	// looked up, and created only if not found.
	PhaseLookFirst Phase = "look_first"
	// PhaseRetryQueued: its failed write is to be retried through the
	// API's retry-write ('importer retry').
	PhaseRetryQueued Phase = "retry_queued"
	// PhaseSending: its write was being sent and may have reached the API
	// without its answer coming back: never sent again blindly.
	PhaseSending Phase = "sending"
	// PhaseSendingRetry: the retry-write of its failed job was being sent.
	PhaseSendingRetry Phase = "sending_retry"
	// PhaseFollowing: the API answered with a job id; status checks (or a
	// webhook) follow the job until it resolves.
	PhaseFollowing Phase = "following"
	// PhaseParked: its job is followed no more while the import is
	// stopped; running the import again follows it again.
	PhaseParked Phase = "parked"
	// PhaseResolved: the row has its outcome.
	PhaseResolved Phase = "resolved"
)

// Phases lists every phase, in the order of a row's life.
var Phases = []Phase{PhaseUnfed, PhaseQueued, PhaseLookFirst, PhaseRetryQueued, PhaseSending, PhaseSendingRetry, PhaseFollowing, PhaseParked, PhaseResolved}

// MaySendAgain reports whether nothing of the row's write can have reached
// the API in phase p: only then may it be sent (nothing twice).
func (p Phase) MaySendAgain() bool {
	return p == PhaseUnfed || p == PhaseQueued || p == PhaseLookFirst || p == PhaseRetryQueued
}

// RowEvent is what happens to a row.
type RowEvent string

// The events of a row's life.
const (
	// RowFed: the feed queued the row's submit.
	RowFed RowEvent = "fed"
	// RowSubmitDue: a submit task of the row ran, its import running.
	// RowUpdateDue: the same, for a row whose planned update is sent
	// (sending an update twice changes nothing the first did not).
	RowSubmitDue RowEvent = "submit_due"
	RowUpdateDue RowEvent = "update_due"
	// RowRecoveredDue: a submit task of a create ran in an import
	// recovered after Redis lost its state: the row may have been sent
	// before, and is looked up first.
	RowRecoveredDue RowEvent = "recovered_due"
	// RowSubmitStopped: a submit task ran while its import is stopped.
	RowSubmitStopped RowEvent = "submit_stopped"
	// RowSubmitCancelled and RowUpdateCancelled: a submit task of a
	// create (or retry-write), or of an update, ran after its import was
	// cancelled.
	RowSubmitCancelled RowEvent = "submit_cancelled"
	RowUpdateCancelled RowEvent = "update_cancelled"
	// RowSendStarted: the row is marked as being sent, just before its
	// request leaves.
	RowSendStarted RowEvent = "send_started"
	// RowSent: the API answered the write with a job id.
	RowSent RowEvent = "sent"
	// RowSendFailed: the API refused the request without writing, or
	// it never left: nothing was written.
	RowSendFailed RowEvent = "send_failed"
	// RowThrottled: the API answered 429: nothing was written, and the
	// row waits for the rate limit's next window.
	RowThrottled RowEvent = "throttled"
	// RowMaybeSent: the request may have reached the API, its answer
	// lost (a timeout, a 5xx after the write).
	RowMaybeSent RowEvent = "maybe_sent"
	// RowRejected: the API refused the write's data (4xx).
	RowRejected RowEvent = "rejected"
	// RowFound: a look-up found the row's one resident (adopted).
	RowFound RowEvent = "found"
	// RowNotFound: a look-up found none.
	RowNotFound RowEvent = "not_found"
	// RowInDoubt: the look-ups cannot tell (several residents, nothing
	// to look up by, every look-up spent): the row fails in_doubt.
	RowInDoubt RowEvent = "in_doubt"
	// RowCheckDue and RowCheckStopped: the status check the row's job
	// is at ran, its import running or stopped.
	RowCheckDue     RowEvent = "check_due"
	RowCheckStopped RowEvent = "check_stopped"
	// RowPending: the job is still PENDING, before its deadline.
	RowPending RowEvent = "pending"
	// RowJobResolved: the job resolved (a status read, or a webhook).
	RowJobResolved RowEvent = "job_resolved"
	// RowTimedOut: the job was still PENDING at its deadline.
	RowTimedOut RowEvent = "timed_out"
	// RowWait: the rate limit, the import's turn beside others or the
	// integration's ceiling holds the row back for a while.
	RowWait RowEvent = "wait"
	// RowReopen...: 'importer retry' takes the row's outcome back, to
	// send it again, retry its write, follow its job again, or look its
	// resident up first (see RetryAction).
	RowReopen           RowEvent = "reopen"
	RowReopenRetryWrite RowEvent = "reopen_retry_write"
	RowReopenFollow     RowEvent = "reopen_follow"
	RowReopenLookFirst  RowEvent = "reopen_look_first"
)

// RowEvents lists every event.
var RowEvents = []RowEvent{RowFed, RowSubmitDue, RowUpdateDue, RowRecoveredDue, RowSubmitStopped, RowSubmitCancelled, RowUpdateCancelled, RowSendStarted, RowSent,
	RowSendFailed, RowThrottled, RowMaybeSent, RowRejected, RowFound, RowNotFound, RowInDoubt, RowCheckDue, RowCheckStopped,
	RowPending, RowJobResolved, RowTimedOut, RowWait, RowReopen, RowReopenRetryWrite, RowReopenFollow, RowReopenLookFirst}

// SubmitEvent is the event of a submit task that ran: of an update or
// not, in an import recovered after Redis lost it, stopped or cancelled
// (a cancel is news before a stop).
func SubmitEvent(update, recovered, stopped, cancelled bool) RowEvent {
	switch {
	case cancelled && update:
		return RowUpdateCancelled
	case cancelled:
		return RowSubmitCancelled
	case stopped:
		return RowSubmitStopped
	case update:
		return RowUpdateDue
	case recovered:
		return RowRecoveredDue
	}
	return RowSubmitDue
}

// ReopenEvent is the event of a retry's action.
func ReopenEvent(a RetryAction) RowEvent {
	switch a {
	case RetryWrite:
		return RowReopenRetryWrite
	case FollowJob:
		return RowReopenFollow
	case LookUpThenSend:
		return RowReopenLookFirst
	}
	return RowReopen
}

// Effect is what a worker does on a transition, besides storing the row's
// new phase.
type Effect string

// The effects.
const (
	// EffectSend sends the row's write (a create, an update, or the
	// retry-write of its failed job): after RowSendStarted, never
	// before.
	EffectSend Effect = "send"
	// EffectLookUp looks the row's resident up in the API.
	EffectLookUp Effect = "look_up"
	// EffectReadStatus reads the status of the row's write job.
	EffectReadStatus Effect = "read_status"
	// EffectScheduleCheck queues the job's next status check, delayed
	// (a no-op when it is on the queue already).
	EffectScheduleCheck Effect = "schedule_check"
	// EffectRecord records the row's outcome, once, with its counters.
	EffectRecord Effect = "record"
	// EffectRequeue runs the same task again after a wait, without
	// spending its retries: a wait is never a failure.
	EffectRequeue Effect = "requeue"
	// EffectRetry fails the task for Asynq to try again later, spending
	// one of its retries: the API could not be reached.
	EffectRetry Effect = "retry"
)

// Transition is what an event does to a row in a phase.
type Transition struct {
	To      Phase
	Effects []Effect
}

// Has reports whether the transition has effect e.
func (t Transition) Has(e Effect) bool { return slices.Contains(t.Effects, e) }

type step struct {
	from  Phase
	event RowEvent
}

// lifecycle is the table. A pair it leaves out does nothing: the event is
// stale news for the phase (a check of a job the row no longer follows, a
// cancel of a row already sent), and the row stays as it is.
var lifecycle = map[step]Transition{}

func on(from Phase, event RowEvent, to Phase, effects ...Effect) {
	lifecycle[step{from, event}] = Transition{To: to, Effects: effects}
}

// waiting are the phases in which nothing of a row's write has left: a
// submit sends it, waits, or leaves it for a stopped import's next run; a
// cancel resolves it.
var waiting = []Phase{PhaseUnfed, PhaseQueued, PhaseLookFirst, PhaseRetryQueued}

func init() {
	on(PhaseUnfed, RowFed, PhaseQueued)
	for _, p := range waiting {
		on(p, RowSubmitDue, p, EffectSend)
		on(p, RowUpdateDue, p, EffectSend)
		on(p, RowSubmitStopped, p) // sent when the import runs again
		on(p, RowSubmitCancelled, PhaseResolved, EffectRecord)
		on(p, RowUpdateCancelled, PhaseResolved, EffectRecord)
		on(p, RowWait, p, EffectRequeue)
	}
	on(PhaseUnfed, RowSendStarted, PhaseSending)
	on(PhaseQueued, RowSendStarted, PhaseSending)
	on(PhaseLookFirst, RowSendStarted, PhaseSending)
	on(PhaseRetryQueued, RowSendStarted, PhaseSendingRetry)
	// A row that may have been sent before (in doubt, tried again; or of
	// an import recovered after Redis lost it) is looked up first:
	// found, adopted; not found, sent.
	for _, p := range []Phase{PhaseUnfed, PhaseQueued, PhaseLookFirst} {
		on(p, RowRecoveredDue, p, EffectLookUp)
		on(p, RowFound, PhaseResolved, EffectRecord)
		on(p, RowInDoubt, PhaseResolved, EffectRecord)
		on(p, RowNotFound, p, EffectSend)
	}
	on(PhaseLookFirst, RowSubmitDue, PhaseLookFirst, EffectLookUp)
	on(PhaseRetryQueued, RowRecoveredDue, PhaseRetryQueued, EffectSend)

	for _, p := range []Phase{PhaseSending, PhaseSendingRetry} {
		back := PhaseQueued
		if p == PhaseSendingRetry {
			back = PhaseRetryQueued
		}
		on(p, RowSent, PhaseFollowing, EffectScheduleCheck)
		on(p, RowSendFailed, back, EffectRetry)
		on(p, RowThrottled, back, EffectRequeue)
		on(p, RowRejected, PhaseResolved, EffectRecord)
		// Its answer lost: looked up (after a while, when its write has
		// had time to resolve), never sent again.
		on(p, RowMaybeSent, p, EffectRequeue)
		for _, e := range []RowEvent{RowSubmitDue, RowRecoveredDue, RowSubmitCancelled, RowUpdateCancelled} {
			on(p, e, p, EffectLookUp) // it may have been sent: never cancelled
		}
		on(p, RowSubmitStopped, p)
		on(p, RowFound, PhaseResolved, EffectRecord)
		on(p, RowNotFound, p, EffectRequeue)
		on(p, RowInDoubt, PhaseResolved, EffectRecord)
		on(p, RowWait, p, EffectRequeue)
	}
	// An update sent twice changes nothing the second time: one whose
	// answer was lost is sent again. A retry-write is not an update.
	on(PhaseSending, RowUpdateDue, PhaseSending, EffectSend)
	on(PhaseSending, RowSendStarted, PhaseSending)
	on(PhaseSending, RowUpdateCancelled, PhaseSending, EffectSend)
	on(PhaseSendingRetry, RowUpdateDue, PhaseSendingRetry, EffectLookUp)

	// Following its job: a submit delivered again makes sure the check is
	// on the queue; a check reads the status, again later while PENDING.
	for _, e := range []RowEvent{RowSubmitDue, RowUpdateDue, RowRecoveredDue, RowSubmitStopped, RowSubmitCancelled, RowUpdateCancelled} {
		on(PhaseFollowing, e, PhaseFollowing, EffectScheduleCheck)
	}
	on(PhaseFollowing, RowCheckDue, PhaseFollowing, EffectReadStatus)
	on(PhaseFollowing, RowCheckStopped, PhaseParked)
	on(PhaseFollowing, RowPending, PhaseFollowing, EffectScheduleCheck)
	on(PhaseFollowing, RowJobResolved, PhaseResolved, EffectRecord)
	on(PhaseFollowing, RowTimedOut, PhaseResolved, EffectRecord)
	on(PhaseFollowing, RowWait, PhaseFollowing, EffectRequeue)

	// Parked while the import is stopped; followed again once it runs
	// (a cancel does not end a write sent).
	for _, e := range []RowEvent{RowSubmitDue, RowUpdateDue, RowRecoveredDue, RowSubmitCancelled, RowUpdateCancelled} {
		on(PhaseParked, e, PhaseFollowing, EffectScheduleCheck)
	}
	on(PhaseParked, RowJobResolved, PhaseResolved, EffectRecord)

	on(PhaseResolved, RowReopen, PhaseQueued)
	on(PhaseResolved, RowReopenRetryWrite, PhaseRetryQueued)
	// Its job followed again as a stopped import's is: the retry's feed
	// queues the row's submit, which follows it (parked + submit_due).
	on(PhaseResolved, RowReopenFollow, PhaseParked)
	on(PhaseResolved, RowReopenLookFirst, PhaseLookFirst)
}

// Next is what event does to a row in phase from: the phase it moves to
// and the effects, and whether the event applies at all (ok false: it is
// stale news for the phase, and nothing changes; so is every event of an
// import gone from the store, where nothing could record it).
func Next(from Phase, event RowEvent) (t Transition, ok bool) {
	t, ok = lifecycle[step{from, event}]
	if !ok {
		return Transition{To: from}, false
	}
	return t, true
}

// LifecycleMermaid draws the table as a Mermaid state diagram, one line a
// transition (the events that make the same move share a line): the
// diagram in ARCHITECTURE.md, checked against it by a test.
func LifecycleMermaid() string {
	type move struct {
		from, to Phase
		effects  string
	}
	events := map[move][]string{}
	var moves []move
	for _, from := range Phases {
		for _, e := range RowEvents {
			t, ok := Next(from, e)
			if !ok {
				continue
			}
			effects := make([]string, len(t.Effects))
			for i, eff := range t.Effects {
				effects[i] = string(eff)
			}
			m := move{from, t.To, strings.Join(effects, ", ")}
			if _, seen := events[m]; !seen {
				moves = append(moves, m)
			}
			events[m] = append(events[m], string(e))
		}
	}
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s\n", PhaseUnfed)
	for _, m := range moves {
		label := strings.Join(events[m], ", ")
		if m.effects != "" {
			label += " / " + m.effects
		}
		fmt.Fprintf(&b, "    %s --> %s: %s\n", m.from, m.to, label)
	}
	fmt.Fprintf(&b, "    %s --> [*]\n", PhaseResolved)
	return b.String()
}
