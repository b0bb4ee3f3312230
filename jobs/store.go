package jobs

import (
	"context"
	"iter"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// Store is what the lifecycle keeps its state in: the one port NewImports
// requires, implemented on Redis by *store.Store (cmd checks so at compile
// time). Its methods are shaped by what must happen in one atomic round
// trip — a row's outcome with its counters, a job id with its webhook
// index — and every one is safe to call twice with the same arguments:
// tasks are delivered at least once.
type Store interface {
	importStore
	inputStore
	rowStore
	readStore
	claimStore
	syncStore
	notifyStore
}

// notifyStore keeps the addresses of notification targets (known
// elsewhere by id only) and what each schedule's firings did.
type notifyStore interface {
	SaveNotifyTarget(ctx context.Context, id, address string) error
	NotifyAddress(ctx context.Context, id string) (address string, ok bool, err error)
	RecordFiring(ctx context.Context, schedule string, f importer.Firing) error
	ScheduleHistory(ctx context.Context, schedule string) (*importer.Firing, []string, error)
}

// syncStore keeps what a sync needs: the snapshot of the residents in an
// import's scope, each row's planned update, and the ledger of what the
// importer wrote in each integration.
type syncStore interface {
	// SaveSnapshotPage stores page n of the import's snapshot; complete
	// says the listing ended with it. SnapshotPages returns the pages
	// stored so far, and whether the listing is complete.
	SaveSnapshotPage(ctx context.Context, id string, n int, page importer.SnapshotPage, complete bool) error
	SnapshotPages(ctx context.Context, id string) ([]importer.SnapshotPage, bool, error)
	// SavePlans records rows' planned updates; a row planned before keeps
	// its first plan. Plans reads them back.
	SavePlans(ctx context.Context, id string, plans map[int]importer.Update) error
	Plans(ctx context.Context, id string, rows []int) (map[int]importer.Update, error)
	// SetStats sets counters to the values given.
	SetStats(ctx context.Context, id string, values map[string]int) error
	// Ledger reads what the importer remembers of hashed match keys in an
	// integration, written within retention; RecordLedger remembers more.
	Ledger(ctx context.Context, integrationID string, keys []string, retention time.Duration) (map[string]importer.LedgerEntry, error)
	RecordLedger(ctx context.Context, integrationID string, entries map[string]importer.LedgerEntry, retention time.Duration) error
}

// importStore keeps the import's record.
type importStore interface {
	// CreateImport stores a new import, or returns the one already stored
	// under the same id; created tells which.
	CreateImport(ctx context.Context, imp importer.Import) (stored importer.Import, created bool, err error)
	// Import returns the import, or importer.ErrImportNotFound.
	Import(ctx context.Context, id string) (importer.Import, error)
	// ImportByContent finds the latest import of a content key.
	ImportByContent(ctx context.Context, key string) (id string, ok bool, err error)
	// Epoch names this Redis's life: it changes only when Redis loses its
	// data.
	Epoch(ctx context.Context) (epoch string, made bool, err error)
	// Refollow records a re-run's options of how the import is followed,
	// and its report folder.
	Refollow(ctx context.Context, id string, opts importer.Options, reportDir string) error
	// Stop marks the import stopped with a reason, unless it already is;
	// Resume clears it.
	Stop(ctx context.Context, id, reason string) error
	// Approve records that the import's plan may pass its guards.
	Approve(ctx context.Context, id string, at time.Time) error
	Resume(ctx context.Context, id string) error
	// Cancel marks the import cancelled, once; it reports whether this
	// call did.
	Cancel(ctx context.Context, id string, at time.Time) (bool, error)
	// Finish records that the import's report was written.
	Finish(ctx context.Context, id string, at time.Time) error
	// Delete removes every key of the import and says how many.
	Delete(ctx context.Context, id string) (int, error)
	// ImportsBefore lists the imports made before t, oldest first.
	ImportsBefore(ctx context.Context, t time.Time) ([]string, error)
	// Lineage names the Redis primaries' history: it changes when a
	// replica takes over or a primary restarts ("" where unknown).
	Lineage(ctx context.Context) (string, error)
}

// inputStore keeps a file's rows and feeds them to the queue a window at a
// time.
type inputStore interface {
	InputHeader(ctx context.Context, id string, proposed []string) ([]string, error)
	SaveInput(ctx context.Context, id string, header []string, rows []importer.Row, results []importer.RowResult) error
	// SetTotal records the number of rows; done is true when every row
	// already has its outcome.
	SetTotal(ctx context.Context, id string, total int, columns importer.FileColumns) (done bool, err error)
	Inputs(ctx context.Context, id string, rows []int) ([]importer.Row, error)
	// StartFeed starts a new generation of the import's feed.
	StartFeed(ctx context.Context, id string) (gen int, err error)
	Feed(ctx context.Context, id string) (importer.FeedState, error)
	// FeedBatch takes the rows first..last that are to be queued, while
	// the window has room and at most quota rows (-1: any) are newly
	// queued; a newer generation makes it fail with
	// importer.ErrFeedSuperseded.
	FeedBatch(ctx context.Context, id string, gen, first, last, window, quota int) (next int, rows []int, states []importer.RowState, queued int, err error)
	// Activate records that an import feeds rows, with its weight, and
	// returns the weights of all the imports feeding now; Deactivate, that
	// it feeds no more. Queued counts the import's rows queued and not
	// sent yet.
	Activate(ctx context.Context, id string, weight int, now time.Time) (int, error)
	Deactivate(ctx context.Context, id string) error
	Queued(ctx context.Context, id string) (int, error)
	// Turn tells whether an import may send a create now beside the
	// others sending (not while it is more than slack turns ahead of the
	// slowest); Sent counts one it sent, 1/weight of a turn.
	Turn(ctx context.Context, id string, weight int, slack float64, now time.Time) (bool, error)
	Sent(ctx context.Context, id string, weight int, now time.Time) error
	AdvanceCursor(ctx context.Context, id string, gen, cursor int) error
	// PauseFeed records the feed task to wake (seq) once the rows in
	// flight fall to wake.
	PauseFeed(ctx context.Context, id string, gen, seq, wake int) error
}

// rowStore follows each row from its split to its outcome.
type rowStore interface {
	RowState(ctx context.Context, id string, row int) (importer.RowState, error)
	RowStates(ctx context.Context, id string, rows []int) ([]importer.RowState, error)
	// Admit takes one of an integration's limit places for a row's
	// write, or reports that all are taken (until deadline at most);
	// Release gives it back for a write that did not leave, ReleasePlace
	// the place a resolve named (importer.Resolution.Ceiling); InFlight
	// counts the places taken.
	Admit(ctx context.Context, integrationID, id string, row, limit int, deadline time.Time) (bool, error)
	Release(ctx context.Context, id string, row int) error
	ReleasePlace(ctx context.Context, integrationID, id string, row int) error
	InFlight(ctx context.Context, integrationID string) (int, error)
	// RowsInFlight returns the rows queued, being sent or followed.
	RowsInFlight(ctx context.Context, id string) ([]int, []importer.RowState, error)
	// Move carries out one transition of a row as a compare-and-set:
	// only where the row still is as the caller read it does it move
	// (see importer.Move). A move to sending is refused for an import
	// cancelled (Moved.Cancelled). Where Redis has replicas, a move to
	// sending must reach one before the write leaves (a failover must not
	// forget it); if none confirms it, the row stays unsent
	// (importer.ErrNotReplicated). A move of an import gone fails with
	// importer.ErrImportNotFound.
	Move(ctx context.Context, id string, m importer.Move) (importer.Moved, error)
	// JobOfRecord finds the create job that wrote the record a key names,
	// with its import and row.
	JobOfRecord(ctx context.Context, recordKey string) (importID string, row int, jobID string, ok bool, err error)
	// Replace changes a row's outcome from `from` to the result's; an
	// import that had finished is opened again (reopened).
	Replace(ctx context.Context, id string, result importer.RowResult, from importer.Outcome) (changed, reopened bool, err error)
	// Reopen takes the planned rows' outcomes back for a retry round, in
	// one atomic step, and returns the rows taken.
	Reopen(ctx context.Context, id string, plans []importer.RetryPlan) ([]importer.RetryPlan, error)
	// JobRow finds the row of a write job; ok is false for a job not
	// known (yet).
	JobRow(ctx context.Context, jobID string) (importID string, row int, ok bool, err error)
	// SaveJobEvent keeps a webhook's news of a job not known yet, for its
	// row to pick up; JobEvent reads it.
	SaveJobEvent(ctx context.Context, ev importer.WriteEvent) error
	JobEvent(ctx context.Context, jobID string) (importer.WriteEvent, bool, error)
	// Count adds one to each of the import's counters given (see the
	// importer.Stat names).
	Count(ctx context.Context, id string, stats ...string) error
	// Tally counts each of stats once and returns their new values.
	Tally(ctx context.Context, id string, stats ...string) ([]int, error)
}

// readStore reads an import as it stands.
type readStore interface {
	Progress(ctx context.Context, id string) (importer.Progress, error)
	// Stats returns the import's counters.
	Stats(ctx context.Context, id string) (map[string]int, error)
	Summary(ctx context.Context, id string) (importer.Summary, error)
	// Rows yields the rows in input order, with their outcomes.
	Rows(ctx context.Context, id string, total int) iter.Seq2[importer.ReportRow, error]
}

// claimStore keeps the leases of scheduled files being read.
type claimStore interface {
	Claim(ctx context.Context, path, owner string, ttl time.Duration) (bool, error)
	Claimed(ctx context.Context, path string) (bool, error)
	Unclaim(ctx context.Context, path, owner string) error
}
