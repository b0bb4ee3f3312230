package importer

// Move is one transition of a stored row (see Next), which the store
// carries out as one compare-and-set: only if the row still is where the
// caller read it (From, and the job and check it names), it moves to To,
// with what To holds (the job followed, the check scheduled, the outcome).
// A move that finds the row elsewhere changes nothing (Moved.Moved is
// false, Moved.Was tells where it is): someone else moved it first, and
// the caller decides again from there. The counters of Stats are added in
// the same round trip in any case: they count what was done (a request
// sent), not where the row went.
//
// Two rules of the lifecycle hold in the store itself, whatever the
// caller read: a row of a cancelled import never moves to sending (a
// cancel and a send cannot both win), and a resolved row moves only on a
// retry's reopen (Store.Reopen), never by a Move.
type Move struct {
	Row int
	// From lists the phases the row must be in; none: any phase but
	// resolved.
	From []Phase
	// FromJob, when set, is the write job the row must be following (or
	// parked on), or the failed job whose retry-write it waits for or is
	// sending: news of another job is stale.
	FromJob string
	// FromCheck, when set, is the status check the followed row must be
	// at.
	FromCheck int
	// To is the phase the row moves to.
	To Phase
	// Job is the job To names: the write job followed (following,
	// parked) or the failed job retried (retry_queued, sending_retry).
	Job string
	// Check is the status check scheduled (following; parked is 0).
	Check int
	// Lookups counts the searches for a sending row's resident that found
	// nothing yet.
	Lookups int
	// Result is the outcome recorded, when To is resolved.
	Result RowResult
	// Stats are counters added in the same round trip.
	Stats []string
	// ForWebhooks, moving to following, indexes the job (and the record
	// RecordKey names, see RecordKey) so that a webhook finds its row.
	ForWebhooks bool
	RecordKey   string
}

// MoveOn is the move of a row read in phase from on event, as the table
// says (see Next); ok is false where the event does not apply to the phase.
// The caller adds what the new phase holds (Row, Job, Check, Result, ...).
func MoveOn(from Phase, event RowEvent) (m Move, ok bool) {
	t, ok := Next(from, event)
	return Move{From: []Phase{from}, To: t.To}, ok
}

// Moved is what a Move did.
type Moved struct {
	// Moved: the row was where the move expected it, and moved.
	Moved bool
	// Was is the phase the row was in.
	Was Phase
	// Cancelled: a move to sending was refused because the import was
	// cancelled.
	Cancelled bool
	// Resolution is what recording the outcome did, for a move to
	// resolved.
	Resolution
}

// PhasesOn lists the phases in which event applies (see Next): the phases
// a move on it may start from, whatever the caller read.
func PhasesOn(event RowEvent) []Phase {
	var out []Phase
	for _, p := range Phases {
		if _, ok := Next(p, event); ok {
			out = append(out, p)
		}
	}
	return out
}
