package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/source"
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
func (im *Imports) Plan(ctx context.Context, p PlanPayload) error {
	_, imp, live, err := im.feeding(ctx, p.ImportID, p.Gen, "plan")
	if !live || err != nil {
		return err
	}
	snap, err := im.storedSnapshot(ctx, imp)
	if err != nil {
		return im.planFailed(ctx, imp.ID, err)
	}
	counts, err := im.decideRows(ctx, imp, snap, im.store.Rows(ctx, imp.ID, imp.Total), nil)
	if err != nil {
		return err
	}
	if err := im.store.SetStats(ctx, imp.ID, map[string]int{
		importer.StatPlannedAction(importer.ActionCreate): counts.Create,
		importer.StatPlannedAction(importer.ActionUpdate): counts.Update,
		importer.StatPlannedAction(importer.ActionNone):   counts.Total - counts.Create - counts.Update,
	}); err != nil {
		return err
	}
	if err := importer.CheckGuards(counts, imp.Options.MaxCreates, imp.Options.MaxUpdates); err != nil {
		reason := err.Error()
		if file, err := im.writePlan(ctx, imp, snap); err != nil {
			im.log.WarnContext(ctx, "cannot write the refused plan", "import_id", imp.ID, "error", err)
		} else if file != "" {
			reason += "; the plan is in " + file
		}
		if err := im.store.Stop(ctx, imp.ID, reason); err != nil {
			return err
		}
		im.log.WarnContext(ctx, "import stopped by its guard", "import_id", imp.ID, "reason", reason)
		return nil
	}
	im.log.InfoContext(ctx, "import planned", "import_id", imp.ID, "listed", snap.Len(), "create", counts.Create, "update", counts.Update,
		"unchanged", counts.Unchanged, "conflict", counts.Conflict, "not_found", counts.NotFound)
	return EnqueueFeed(ctx, im.queue, FeedPayload{ImportID: imp.ID, Gen: p.Gen, Seq: 1}, 0)
}

// writePlan writes the import's plan.csv through the Reports port (none in
// a process without a report folder: then it returns "").
func (im *Imports) writePlan(ctx context.Context, imp importer.Import, snap *importer.Snapshot) (string, error) {
	if im.reports == nil {
		return "", nil
	}
	out, err := im.reports.NewPlan(imp)
	if err != nil {
		return "", err
	}
	defer out.Abort()
	_, err = im.decideRows(ctx, imp, snap, im.store.Rows(ctx, imp.ID, imp.Total), func(row importer.ReportRow, _ importer.Resident, d importer.Decision) error {
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
func (im *Imports) planFailed(ctx context.Context, importID string, err error) error {
	if apiErr, ok := asAPIError(err); ok && apiErr.Kind == importer.KindUnauthorized {
		return im.stopImport(ctx, importID, apiErr)
	}
	return err
}

// storedSnapshot returns the import's snapshot, listing the pages it does
// not have yet and storing each as it comes.
func (im *Imports) storedSnapshot(ctx context.Context, imp importer.Import) (*importer.Snapshot, error) {
	pages, complete, err := im.store.SnapshotPages(ctx, imp.ID)
	if err != nil {
		return nil, err
	}
	if !complete {
		scopes, err := im.scopes(ctx, imp)
		if err != nil {
			return nil, err
		}
		err = im.list(ctx, imp.ID, scopes, pages, func(n int, page importer.SnapshotPage, last bool) error {
			pages = append(pages, page)
			return im.store.SaveSnapshotPage(ctx, imp.ID, n, page, last)
		})
		if err != nil {
			return nil, err
		}
	}
	snap := importer.NewSnapshot()
	for _, page := range pages {
		for _, rec := range page.Records {
			snap.Add(rec)
		}
	}
	return snap, nil
}

// scopes are the listings an import's snapshot needs: each integration its
// valid rows write to (the property alone when --property-id names one).
func (im *Imports) scopes(ctx context.Context, imp importer.Import) ([]importer.ListScope, error) {
	v := importer.NewValidator(imp.Options)
	seen := map[importer.ListScope]bool{}
	for row, err := range im.store.Rows(ctx, imp.ID, imp.Total) {
		if err != nil {
			return nil, err
		}
		if row.Result.Outcome == importer.Invalid || row.Result.Outcome == importer.Duplicate {
			continue
		}
		r, problems := v.Resident(importer.RowOf(row.Result.Row, row.Result.Line, row.Columns))
		if len(problems) == 0 {
			seen[scopeOf(imp.Options, r)] = true
		}
	}
	return sortedScopes(seen), nil
}

func scopeOf(opts importer.Options, r importer.Resident) importer.ListScope {
	s := importer.ListScope{IntegrationID: r.IntegrationID}
	if opts.PropertyID != "" && r.PropertyID == opts.PropertyID {
		s.PropertyID = opts.PropertyID
	}
	return s
}

func sortedScopes(seen map[importer.ListScope]bool) []importer.ListScope {
	out := make([]importer.ListScope, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b importer.ListScope) int {
		if a.IntegrationID != b.IntegrationID {
			return cmpString(a.IntegrationID, b.IntegrationID)
		}
		return cmpString(a.PropertyID, b.PropertyID)
	})
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// list pages through the scopes' residents, 250 a page, oldest first,
// going on after the pages already listed (done), and hands each page to
// save with its number and whether it is the last.
func (im *Imports) list(ctx context.Context, importID string, scopes []importer.ListScope, done []importer.SnapshotPage,
	save func(n int, page importer.SnapshotPage, last bool) error) error {
	if im.api == nil {
		return errors.New("this process has no API to list residents with")
	}
	n, scope, offset := len(done), 0, 0
	if n > 0 {
		lastPage := done[n-1]
		scope = slices.Index(scopes, lastPage.Scope)
		offset = lastPage.Offset + len(lastPage.Records)
		if !lastPage.More {
			scope, offset = scope+1, 0
		}
	}
	if len(scopes) == 0 || scope >= len(scopes) {
		return save(n, importer.SnapshotPage{}, true) // nothing (more) to list
	}
	for ; scope < len(scopes); scope, offset = scope+1, 0 {
		for {
			if err := im.take(ctx, importID, 1); err != nil {
				var wait *waitError
				if importID != "" || !errors.As(err, &wait) {
					return err // a task is tried again after the wait
				}
				// A preview waits in place for the rate limit.
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait.after):
					continue
				}
			}
			recs, more, _, err := im.api.ListResidents(ctx, scopes[scope], offset)
			im.countRequest(ctx, importID, importer.EndpointListResidents, err)
			if err != nil {
				return err
			}
			page := importer.SnapshotPage{Scope: scopes[scope], Offset: offset, More: more, Records: recs}
			if err := save(n, page, !more && scope == len(scopes)-1); err != nil {
				return err
			}
			n++
			if !more {
				break
			}
			offset += len(recs)
		}
	}
	return nil
}

// decideBatch is how many rows a plan decides per round trip.
const decideBatch = 500

// decideRows decides every row of rows against the snapshot and the
// ledger, and counts the decisions. Without show, it records them: the
// outcome of each row that writes nothing, the update of each row to
// update (rows already sent, or with an outcome, are counted, not
// recorded again). With show, it records nothing and hands every row's
// decision to show (importer plan).
func (im *Imports) decideRows(ctx context.Context, imp importer.Import, snap *importer.Snapshot, rows iter.Seq2[importer.ReportRow, error],
	show func(importer.ReportRow, importer.Resident, importer.Decision) error) (importer.PlanCounts, error) {
	var counts importer.PlanCounts
	v := importer.NewValidator(imp.Options)
	keysOn := importer.MatchKeys(imp.Options.MatchOn)
	batch := make([]pendingRow, 0, decideBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		ledger, err := im.ledgerOf(ctx, batch)
		if err != nil {
			return err
		}
		var numbers []int
		for _, p := range batch {
			numbers = append(numbers, p.row.Result.Row)
		}
		var states []rowInFlight
		if show == nil {
			if states, err = im.inFlight(ctx, imp.ID, numbers); err != nil {
				return err
			}
		}
		var results []importer.RowResult
		plans := map[int]importer.Update{}
		now := time.Now().UTC()
		for i, p := range batch {
			var matches []importer.ResidentRecord
			if p.key != "" {
				matches = snap.Find(p.key)
			}
			var entry *importer.LedgerEntry
			if e, ok := ledger[importer.LedgerKey(p.resident.IntegrationID, p.key)]; ok && p.key != "" {
				entry = &e
			}
			d := importer.Decide(imp.Options.Mode, p.resident, matches, entry)
			counts.Add(d)
			if show != nil {
				if err := show(p.row, p.resident, d); err != nil {
					return err
				}
				continue
			}
			if p.row.Result.Outcome != "" || states[i].sent {
				continue // decided and recorded before, or sent already
			}
			switch d.Action {
			case importer.ActionNone:
				r := d.Result(p.row.Result.Row, p.row.Result.Line)
				r.At = now
				results = append(results, r)
			case importer.ActionUpdate:
				var rec *importer.ResidentRecord
				if len(matches) == 1 {
					rec = &matches[0]
				}
				plans[p.row.Result.Row] = importer.Update{RecordID: d.RecordID, Changes: d.Changes,
					Body: importer.UpdateOf(imp.Options.Vendor, p.resident, rec, d.Changes)}
			}
		}
		batch = batch[:0]
		if show != nil {
			return nil
		}
		if err := im.store.SavePlans(ctx, imp.ID, plans); err != nil {
			return err
		}
		return im.store.SaveInput(ctx, imp.ID, nil, nil, results)
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
		r, problems := v.Resident(importer.RowOf(row.Result.Row, row.Result.Line, row.Columns))
		if len(problems) > 0 {
			counts.Invalid++ // the rules changed since the split
			continue
		}
		key, _ := importer.MatchKeyOf(r, keysOn)
		batch = append(batch, pendingRow{row: row, resident: r, key: key})
		if len(batch) == decideBatch {
			if err := flush(); err != nil {
				return counts, err
			}
		}
	}
	return counts, flush()
}

// rowInFlight says whether a row's write may have been sent.
type rowInFlight struct{ sent bool }

func (im *Imports) inFlight(ctx context.Context, importID string, rows []int) ([]rowInFlight, error) {
	states, err := im.store.RowStates(ctx, importID, rows)
	if err != nil {
		return nil, err
	}
	out := make([]rowInFlight, len(states))
	for i, s := range states {
		out[i].sent = s.Sending || s.JobID != "" || s.RetryOf != "" || s.Resolved
	}
	return out, nil
}

// pendingRow is a row waiting in a plan's batch: its resident and the match
// key it has ("" for none).
type pendingRow struct {
	row      importer.ReportRow
	resident importer.Resident
	key      string
}

// ledgerOf reads the ledger's entries of a batch's match keys, by hashed
// key, an integration at a time.
func (im *Imports) ledgerOf(ctx context.Context, batch []pendingRow) (map[string]importer.LedgerEntry, error) {
	byIntegration := map[string][]string{}
	for _, p := range batch {
		if integration, key := p.resident.IntegrationID, p.key; key != "" {
			byIntegration[integration] = append(byIntegration[integration], importer.LedgerKey(integration, key))
		}
	}
	out := map[string]importer.LedgerEntry{}
	for integration, keys := range byIntegration {
		found, err := im.store.Ledger(ctx, integration, keys, im.cfg.LedgerRetention)
		if err != nil {
			return nil, err
		}
		for k, e := range found {
			out[k] = e
		}
	}
	return out, nil
}

// writeReport writes the import's report through the Reports port. Before,
// it remembers in the ledger every resident the import wrote (so the next
// import of the roster finds them while the API's cache lags), and, for a
// sync, finds the residents of the snapshot no row matched.
func (im *Imports) writeReport(ctx context.Context, imp importer.Import) (string, error) {
	matched, err := im.rememberWrites(ctx, imp)
	if err != nil {
		return "", err
	}
	var missing []importer.ResidentRecord
	if imp.Options.Mode.Matches() {
		pages, _, err := im.store.SnapshotPages(ctx, imp.ID)
		if err != nil {
			return "", err
		}
		missing = []importer.ResidentRecord{}
		for _, page := range pages {
			for _, rec := range page.Records {
				if !matched[rec.ID] {
					missing = append(missing, rec)
				}
			}
		}
	}
	return im.reports.WriteReport(ctx, imp, missing)
}

// rememberWrites records in the ledger, under each match key its resident
// has, every row the import created or updated, and returns the ids of the
// residents its rows name.
func (im *Imports) rememberWrites(ctx context.Context, imp importer.Import) (map[string]bool, error) {
	v := importer.NewValidator(imp.Options)
	matched := map[string]bool{}
	entries := map[string]map[string]importer.LedgerEntry{} // by integration
	flush := func() error {
		for integration, batch := range entries {
			if err := im.store.RecordLedger(ctx, integration, batch, im.cfg.LedgerRetention); err != nil {
				return err
			}
		}
		clear(entries)
		return nil
	}
	n := 0
	for row, err := range im.store.Rows(ctx, imp.ID, max(imp.Total, 0)) {
		if err != nil {
			return nil, err
		}
		r := row.Result
		if r.RecordID != "" {
			matched[r.RecordID] = true
		}
		if r.Outcome != importer.Succeeded || r.RecordID == "" || (r.Action != importer.ActionCreate && r.Action != importer.ActionUpdate) {
			continue
		}
		res, problems := v.Resident(importer.RowOf(r.Row, r.Line, row.Columns))
		if len(problems) > 0 {
			continue
		}
		entry := importer.LedgerEntry{RecordID: r.RecordID, Sent: importer.SentHash(res), At: r.At}
		for _, k := range []importer.MatchKey{importer.MatchXID, importer.MatchEmail, importer.MatchNameDOB} {
			if key, ok := importer.MatchKeyOf(res, []importer.MatchKey{k}); ok {
				if entries[res.IntegrationID] == nil {
					entries[res.IntegrationID] = map[string]importer.LedgerEntry{}
				}
				entries[res.IntegrationID][importer.LedgerKey(res.IntegrationID, key)] = entry
				n++
			}
		}
		if n >= decideBatch {
			if err := flush(); err != nil {
				return nil, err
			}
			n = 0
		}
	}
	return matched, flush()
}

// Preview decides every row of an inspected file as its import's plan
// would, reading only: it lists the residents in scope and reads the
// ledger, and hands each row's decision to show, in file order. Nothing is
// stored and nothing is written ('importer plan').
func (im *Imports) Preview(ctx context.Context, f Inspected, show func(importer.ReportRow, importer.Resident, importer.Decision) error) (importer.PlanCounts, int, error) {
	imp := importer.Import{ID: f.ID(), File: f.Name, Options: f.Options}
	if !f.Options.Mode.Matches() {
		imp.Options.Mode = importer.ModeCreate
	}
	// Two passes over the file, as streams: the scopes to list, then the
	// decisions.
	seen := map[importer.ListScope]bool{}
	err := im.fileRows(f, func(row importer.ReportRow, r importer.Resident) error {
		if row.Result.Outcome == "" {
			seen[scopeOf(f.Options, r)] = true
		}
		return nil
	})
	if err != nil {
		return importer.PlanCounts{}, 0, err
	}
	snap := importer.NewSnapshot()
	if f.Options.Mode.Matches() {
		err := im.list(ctx, "", sortedScopes(seen), nil, func(_ int, page importer.SnapshotPage, _ bool) error {
			for _, rec := range page.Records {
				snap.Add(rec)
			}
			return nil
		})
		if err != nil {
			return importer.PlanCounts{}, 0, err
		}
	}
	rows := func(yield func(importer.ReportRow, error) bool) {
		stop := errors.New("stop")
		err := im.fileRows(f, func(row importer.ReportRow, _ importer.Resident) error {
			if !yield(row, nil) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			yield(importer.ReportRow{}, err)
		}
	}
	counts, err := im.decideRows(ctx, imp, snap, rows, show)
	return counts, snap.Len(), err
}

// fileRows reads an inspected file as a split would: every row, with the
// outcome of an invalid or duplicate one, and the resident of a valid one.
func (im *Imports) fileRows(f Inspected, each func(importer.ReportRow, importer.Resident) error) error {
	rows, err := source.OpenFile(f.Path, f.Options.Format, f.Size, source.Options{Limits: f.Limits, Delimiter: f.Options.DelimiterRune()})
	if err != nil {
		return &InputError{File: f.Shown, Err: err}
	}
	defer rows.Close()
	v := importer.NewValidator(f.Options)
	for {
		row, err := rows.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &InputError{File: f.Shown, Err: err}
		}
		rr := importer.ReportRow{Result: importer.RowResult{Row: row.Number, Line: row.Line}, Columns: row.Columns}
		r, problems, dupOf := v.Check(row)
		switch {
		case len(problems) > 0:
			rr.Result.Outcome, rr.Result.Error = importer.Invalid, importer.JoinProblems(problems)
		case dupOf > 0:
			rr.Result.Outcome, rr.Result.Error = importer.Duplicate, fmt.Sprintf("the same record as row %d", dupOf)
		}
		if err := each(rr, r); err != nil {
			return err
		}
	}
}
