package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// This file holds what an operator does to imports (administering):
// cancel, review, delete, prune, and approve a plan its guards held.

// NotFinishedError refuses to delete an import that has not finished: its
// rows in flight would go on in the API with nothing to record their
// outcome.
type NotFinishedError struct{ Import importer.Import }

func (e *NotFinishedError) Error() string {
	return fmt.Sprintf("import %s is %s", e.Import.ID, e.Import.State())
}

// RowsExpiredError says the rows of an import were deleted from Redis after
// its retention: its counts remain, its report cannot be written again.
type RowsExpiredError struct{ Import importer.Import }

func (e *RowsExpiredError) Error() string {
	return fmt.Sprintf("the rows of import %s were deleted from Redis at %s, after its retention", e.Import.ID, e.Import.ExpiresAt.Format(time.RFC3339))
}

// Cancel stops an unfinished import from sending any more rows. Every row
// not sent yet ends cancelled at once (no send can start after the cancel:
// the move to sending is a compare-and-set on the phase, see Store.Move); rows being sent or followed go on to their
// outcome. When that leaves none open, the import ends now: its report is
// written here, or, in a process without a report folder (the dashboard),
// by the workers.
func (adm *Administering) Cancel(ctx context.Context, id string) error {
	imp, err := adm.store.Import(ctx, id)
	if err != nil {
		return err
	}
	if imp.Finished() {
		return fmt.Errorf("import %s: %w", id, ErrFinished)
	}
	if _, err := adm.store.Cancel(ctx, id, time.Now()); err != nil {
		return err
	}
	const batch = 500
	for first := 1; first <= imp.Total; first += batch {
		var rows []int
		for n := first; n < first+batch && n <= imp.Total; n++ {
			rows = append(rows, n)
		}
		states, err := adm.store.RowStates(ctx, id, rows)
		if err != nil {
			return err
		}
		for i, s := range states {
			// A row not sent resolves cancelled; one sent (or being
			// sent) is followed to its own outcome.
			m, ok := importer.MoveOn(s.Phase(), importer.RowSubmitCancelled)
			if !ok || m.To != importer.PhaseResolved {
				continue
			}
			m.Row, m.Result = rows[i], importer.RowResult{Row: rows[i], Outcome: importer.Cancelled, ErrorCode: importer.CodeCancelled,
				Error: "not sent: the import was cancelled", At: time.Now().UTC()}
			res, err := adm.store.Move(ctx, id, m)
			if err != nil {
				return err
			}
			if res.Done {
				return adm.fin.endHere(ctx, id)
			}
		}
	}
	return nil
}

// Review reads an import's rows and says what is left to do (see
// ReviewImport).
func (adm *Administering) Review(ctx context.Context, imp importer.Import, failedCSV string, lasting bool) (Review, error) {
	p, err := adm.store.Progress(ctx, imp.ID)
	if err != nil {
		return Review{}, err
	}
	return ReviewImport(imp, p, adm.store.Rows(ctx, imp.ID, imp.Total), failedCSV, lasting)
}

// Forgetter forgets the trace of a deleted import (see Trace): the import is
// forgotten, not lost, and its file run again is a new import.
type Forgetter interface {
	Forget(importID string) error
}

// Delete removes every key of an import from Redis and returns how many it
// removed; forget, when set, forgets its trace too. An import that has not
// finished is refused (*NotFinishedError) unless force.
func (adm *Administering) Delete(ctx context.Context, id string, force bool, forget Forgetter) (int, error) {
	imp, err := adm.store.Import(ctx, id)
	if err != nil {
		return 0, err
	}
	if !imp.Finished() && !force {
		return 0, &NotFinishedError{Import: imp}
	}
	return adm.delete(ctx, id, forget)
}

func (adm *Administering) delete(ctx context.Context, id string, forget Forgetter) (int, error) {
	n, err := adm.store.Delete(ctx, id)
	if err != nil {
		return n, err
	}
	if forget != nil {
		if err := forget.Forget(id); err != nil {
			adm.log.WarnContext(ctx, "cannot remove the receipt of a deleted import", "import_id", id, "error", err)
		}
	}
	return n, nil
}

// Pruned counts what Prune did.
type Pruned struct {
	// Imports and Keys count the imports deleted and their keys.
	Imports, Keys int
	// Running counts the imports old enough that were left alone: they
	// have not finished.
	Running int
}

// Prune deletes every finished import made before a time (as Delete does);
// imports still running are left alone.
func (adm *Administering) Prune(ctx context.Context, before time.Time, forget Forgetter) (Pruned, error) {
	var res Pruned
	ids, err := adm.store.ImportsBefore(ctx, before)
	if err != nil {
		return res, err
	}
	for _, id := range ids {
		imp, err := adm.store.Import(ctx, id)
		if errors.Is(err, importer.ErrImportNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		if !imp.Finished() {
			res.Running++
			continue
		}
		n, err := adm.delete(ctx, id, forget)
		if err != nil {
			return res, err
		}
		res.Imports, res.Keys = res.Imports+1, res.Keys+n
	}
	return res, nil
}

// Approve lets an import's plan pass its guards (--max-creates,
// --max-updates): an operator has checked the plan the guard refused. The
// import is not resumed here: the next firing of its schedule, or its run
// again, plans it anew and writes it. An import that finished cannot be
// approved.
func (adm *Administering) Approve(ctx context.Context, id string) error {
	imp, err := adm.store.Import(ctx, id)
	if err != nil {
		return err
	}
	if imp.Finished() {
		return fmt.Errorf("import %s: %w", id, ErrFinished)
	}
	return adm.store.Approve(ctx, id, time.Now())
}
