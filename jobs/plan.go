package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// This file holds the plan of a sync: before anything is written, the
// residents of the import's scope are listed once (the snapshot), and every
// row is decided — create, update, or leave alone (unchanged, conflict,
// not_found) — against the snapshot and the ledger. The decisions are
// stored before the first write, so a worker that dies between a row's
// look-up and its write never turns an update into a create.

// TypePlan plans a sync import's rows between its split and its feed.
const TypePlan = "import:plan"

// PlanPayload is the payload of an import:plan task.
type PlanPayload struct {
	ImportID string `json:"import_id"`
	// Gen is the feed generation the split started: the plan starts that
	// generation's feed when it is done.
	Gen int `json:"gen"`
}

// EnqueuePlan queues an import's plan for a feed generation, once.
func EnqueuePlan(ctx context.Context, q Enqueuer, p PlanPayload) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("error encoding the plan of %s: %w", p.ImportID, err)
	}
	return enqueue(ctx, q, asynq.NewTask(TypePlan, b),
		asynq.TaskID("plan:"+p.ImportID+":"+strconv.Itoa(p.Gen)),
		asynq.Queue(QueueFinalize), asynq.MaxRetry(25), asynq.Timeout(30*time.Minute))
}

// Plan handles import:plan. It completes the import's snapshot (going on
// from the last page stored, so a retried task lists nothing twice), decides
// every row, records the rows that write nothing and the updates planned,
// and, unless the plan writes more than the import's guards allow (then
// the import stops, having written nothing), starts the feed.
func (fd *Feeding) Plan(ctx context.Context, p PlanPayload) error {
	_, imp, live, err := fd.feeding(ctx, p.ImportID, p.Gen, "plan")
	if !live || err != nil {
		return err
	}
	snap, err := fd.storedSnapshot(ctx, imp)
	if err != nil {
		return fd.planFailed(ctx, imp.ID, err)
	}
	counts, err := fd.decideRows(ctx, imp, snap, fd.store.Rows(ctx, imp.ID, imp.Total), nil)
	if err != nil {
		return err
	}
	if err := fd.store.SetStats(ctx, imp.ID, map[string]int{
		importer.StatPlannedAction(importer.ActionCreate): counts.Create,
		importer.StatPlannedAction(importer.ActionUpdate): counts.Update,
		importer.StatPlannedAction(importer.ActionNone):   counts.Total - counts.Create - counts.Update,
	}); err != nil {
		return err
	}
	if err := importer.CheckGuards(counts, imp.Options.MaxCreates, imp.Options.MaxUpdates); err != nil && imp.ApprovedAt.IsZero() {
		reason := err.Error()
		if file, err := fd.writePlan(ctx, imp, snap); err != nil {
			fd.log.WarnContext(ctx, "cannot write the refused plan", "import_id", imp.ID, "error", err)
		} else if file != "" {
			reason += "; the plan is in " + file
		}
		reason += "; once it is checked, 'importer approve " + imp.ID + "' lets it pass, and the next firing (or the same run again) writes it"
		return fd.stop(ctx, imp.ID, importer.EventPlanRefused, reason)
	} else if err != nil {
		fd.log.InfoContext(ctx, "plan past its guards, approved", "import_id", imp.ID, "approved_at", imp.ApprovedAt, "guard", err.Error())
	}
	fd.log.InfoContext(ctx, "import planned", "import_id", imp.ID, "listed", snap.Len(), "create", counts.Create, "update", counts.Update,
		"unchanged", counts.Unchanged, "conflict", counts.Conflict, "not_found", counts.NotFound)
	if progress, err := fd.store.Progress(ctx, imp.ID); err != nil {
		return err
	} else if progress.Done() {
		// Nothing to write (every row unchanged, say): no resolve will
		// come to finish the import.
		return EnqueueFinalize(ctx, fd.queue, imp.ID, imp.Round)
	}
	return EnqueueFeed(ctx, fd.queue, FeedPayload{ImportID: imp.ID, Gen: p.Gen, Seq: 1}, 0)
}

// writePlan writes the import's plan.csv through the Reports port (none in
// a process without a report folder: then it returns "").
func (fd *Feeding) writePlan(ctx context.Context, imp importer.Import, snap *importer.Snapshot) (string, error) {
	if fd.reports == nil {
		return "", nil
	}
	out, err := fd.reports.NewPlan(imp)
	if err != nil {
		return "", err
	}
	defer out.Abort()
	_, err = fd.decideRows(ctx, imp, snap, fd.store.Rows(ctx, imp.ID, imp.Total), func(row importer.ReportRow, _ importer.Resident, d importer.Decision) error {
		return out.Add(row.Result.Row, d)
	})
	if err != nil {
		return "", err
	}
	return out.Commit()
}

// planFailed stops the import when its snapshot cannot be listed for a
// reason retrying cannot mend (rejected credentials); other errors are
// retried.
func (fd *Feeding) planFailed(ctx context.Context, importID string, err error) error {
	if apiErr, ok := asAPIError(err); ok && apiErr.Kind == importer.KindUnauthorized {
		return fd.stopImport(ctx, importID, apiErr)
	}
	return err
}

// decideBatch is how many rows a plan decides per round trip.
const decideBatch = 500

// decideRows decides every row of rows against the snapshot and the
// ledger, and counts the decisions. Without show, it records them: the
// outcome of each row that writes nothing, the update of each row to
// update (rows already sent, or with an outcome, are counted, not
// recorded again). With show, it records nothing and hands every row's
// decision to show (importer plan).
func (fd *Feeding) decideRows(ctx context.Context, imp importer.Import, snap *importer.Snapshot, rows iter.Seq2[importer.ReportRow, error],
	show func(importer.ReportRow, importer.Resident, importer.Decision) error) (importer.PlanCounts, error) {
	var counts importer.PlanCounts
	v := importer.NewValidator(imp.Options)
	sync := importer.NewSync(imp, time.Now())
	keysOn := importer.MatchKeys(imp.Options.MatchOn)
	// The first row of each key, by a hash of the integration and the key:
	// a later row with the same key is a duplicate, never a second create.
	firstOfKey := map[[16]byte]int{}
	batch := make([]pendingRow, 0, decideBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ledger, err := fd.ledgerOf(ctx, batch)
		if err != nil {
			return err
		}
		var numbers []int
		for _, p := range batch {
			numbers = append(numbers, p.row.Result.Row)
		}
		var sent []bool
		if show == nil {
			if sent, err = fd.sent(ctx, imp.ID, numbers); err != nil {
				return err
			}
		}
		var results []importer.RowResult
		plans := map[int]importer.Update{}
		now := sync.Now.UTC()
		for i, p := range batch {
			var matches []importer.ResidentRecord
			if p.key != "" {
				matches = snap.Find(p.key)
			}
			var entry *importer.LedgerEntry
			if e, ok := ledger[importer.LedgerKey(p.resident.IntegrationID, p.key)]; ok && p.key != "" {
				entry = &e
			}
			d := sync.Decide(p.resident, matches, entry)
			if p.sameKeyAs > 0 {
				d = importer.Decision{Action: importer.ActionNone, Outcome: importer.Duplicate,
					Note: fmt.Sprintf("the same %s as row %d", importer.KindOf(p.key), p.sameKeyAs)}
			}
			counts.Add(d)
			if show != nil {
				if err := show(p.row, p.resident.Resident, d); err != nil {
					return err
				}
				continue
			}
			if p.row.Result.Outcome != "" || sent[i] {
				continue // decided and recorded before, or sent already
			}
			if d.Action == importer.ActionNone {
				r := d.Result(p.row.Result.Row, p.row.Result.Line)
				r.At = now
				results = append(results, r)
			} else if u, ok := d.Planned(); ok {
				plans[p.row.Result.Row] = u
			}
		}
		batch = batch[:0]
		if show != nil {
			return nil
		}
		if err := fd.store.SavePlans(ctx, imp.ID, plans); err != nil {
			return err
		}
		return fd.store.SaveInput(ctx, imp.ID, nil, nil, results)
	}
	for row, err := range rows {
		if err != nil {
			return counts, err
		}
		counts.Total++
		switch row.Result.Outcome {
		case importer.Invalid, importer.Duplicate:
			if row.Result.Outcome == importer.Invalid {
				counts.Invalid++
			} else {
				counts.Duplicate++
			}
			if show != nil {
				// In file order: the batch before it first.
				if err := flush(); err != nil {
					return counts, err
				}
				d := importer.Decision{Action: importer.ActionNone, Outcome: row.Result.Outcome, Note: row.Result.Error}
				if err := show(row, importer.Resident{}, d); err != nil {
					return counts, err
				}
			}
			continue
		}
		fileRow := v.Row(row.Result.Row, row.Result.Line, row.Columns)
		r, problems := v.RowResident(fileRow, sync)
		if len(problems) > 0 {
			counts.Invalid++ // the rules changed since the split
			continue
		}
		key, _ := importer.MatchKeyOf(r.Resident, keysOn)
		pending := pendingRow{row: row, resident: r, key: key}
		if key != "" && imp.Options.Mode.Matches() {
			h := sha256.Sum256([]byte(key)) // the key holds its scope
			id := [16]byte(h[:16])
			if first, seen := firstOfKey[id]; seen {
				pending.sameKeyAs = first
			} else {
				firstOfKey[id] = row.Result.Row
			}
		}
		batch = append(batch, pending)
		if len(batch) == decideBatch {
			if err := flush(); err != nil {
				return counts, err
			}
		}
	}
	return counts, flush()
}

// sent says, for each row, whether its write may have been sent (or it has
// its outcome): such a row is not planned again.
func (fd *Feeding) sent(ctx context.Context, importID string, rows []int) ([]bool, error) {
	states, err := fd.store.RowStates(ctx, importID, rows)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(states))
	for i, s := range states {
		out[i] = s.Sending || s.JobID != "" || s.RetryOf != "" || s.Resolved
	}
	return out, nil
}

// pendingRow is a row waiting in a plan's batch: its resident and the match
// key it has ("" for none).
type pendingRow struct {
	row      importer.ReportRow
	resident importer.RowResident
	key      string
	// sameKeyAs is the earlier row of the file with the same key, if any.
	sameKeyAs int
}

// ledgerOf reads the ledger's entries of a batch's match keys, by hashed
// key, an integration at a time.
func (fd *Feeding) ledgerOf(ctx context.Context, batch []pendingRow) (map[string]importer.LedgerEntry, error) {
	byIntegration := map[string][]string{}
	for _, p := range batch {
		if integration, key := p.resident.IntegrationID, p.key; key != "" {
			byIntegration[integration] = append(byIntegration[integration], importer.LedgerKey(integration, key))
		}
	}
	out := map[string]importer.LedgerEntry{}
	for integration, keys := range byIntegration {
		found, err := fd.store.Ledger(ctx, integration, keys, fd.cfg.LedgerRetention)
		if err != nil {
			return nil, err
		}
		for k, e := range found {
			out[k] = e
		}
	}
	return out, nil
}
