package jobs

import (
	"context"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// This file holds what a sync leaves for the next one: the ledger of the
// residents it wrote, and the report with the residents the file left out.

// writeReport writes the import's report through the Reports port. For a
// sync, it first remembers in the ledger every resident the import wrote
// (so that the next import of the roster finds them while the API's cache
// lags; once, before the import is finished) and finds the residents of
// the snapshot no row matched (missing.csv).
func (fin *Finishing) writeReport(ctx context.Context, imp importer.Import) (string, error) {
	if !imp.Options.Mode.Matches() {
		return fin.reports.WriteReport(ctx, imp, nil)
	}
	matched, err := fin.rememberWrites(ctx, imp, !imp.Finished())
	if err != nil {
		return "", err
	}
	pages, _, err := fin.store.SnapshotPages(ctx, imp.ID)
	if err != nil {
		return "", err
	}
	var missing []importer.ResidentRecord
	whole := true
	for _, page := range pages {
		whole = whole && page.Whole()
	}
	if whole {
		// Only a listing of whole scopes tells who the file left out; a
		// resident gone from the PMS (not seen for --stale-after) is not
		// missing from the file.
		sync := importer.NewSync(imp, time.Now())
		missing = []importer.ResidentRecord{}
		for _, page := range pages {
			for _, rec := range page.Records {
				if !matched[rec.ID] && !sync.Stale(rec) {
					missing = append(missing, rec)
				}
			}
		}
	}
	return fin.reports.WriteReport(ctx, imp, missing)
}

// rememberWrites returns the ids of the residents the import's rows name
// and, with record, remembers in the ledger, under each row's match key,
// the resident every succeeded create or update wrote.
func (fin *Finishing) rememberWrites(ctx context.Context, imp importer.Import, record bool) (map[string]bool, error) {
	v := importer.NewValidator(imp.Options)
	sync := importer.NewSync(imp, time.Now())
	on := importer.MatchKeys(imp.Options.MatchOn)
	matched := map[string]bool{}
	entries := map[string]map[string]importer.LedgerEntry{} // by integration
	n := 0
	flush := func() error {
		for integration, batch := range entries {
			if err := fin.store.RecordLedger(ctx, integration, batch, fin.cfg.LedgerRetention); err != nil {
				return err
			}
		}
		clear(entries)
		n = 0
		return nil
	}
	for row, err := range fin.store.Rows(ctx, imp.ID, max(imp.Total, 0)) {
		if err != nil {
			return nil, err
		}
		r := row.Result
		if r.RecordID != "" {
			matched[r.RecordID] = true
		}
		if !record || r.Outcome != importer.Succeeded || r.RecordID == "" || (r.Action != importer.ActionCreate && r.Action != importer.ActionUpdate) {
			continue
		}
		res, problems := v.RowResident(v.Row(r.Row, r.Line, row.Columns), sync)
		key, ok := importer.MatchKeyOf(res.Resident, on)
		if len(problems) > 0 || !ok {
			continue
		}
		if entries[res.IntegrationID] == nil {
			entries[res.IntegrationID] = map[string]importer.LedgerEntry{}
		}
		entries[res.IntegrationID][importer.LedgerKey(res.IntegrationID, key)] = importer.LedgerEntry{RecordID: r.RecordID,
			Sent: importer.SentHash(res.Resident), Blind: sync.BlindHash(res), At: r.At, AsOf: imp.RosterAsOf}
		if n++; n >= decideBatch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	return matched, flush()
}
