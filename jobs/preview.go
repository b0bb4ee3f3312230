package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/source"
)

// This file holds 'importer plan': a sync's decisions on a file, reading
// only.

// Preview decides every row of an inspected file as its import's plan
// would, reading only: it lists the residents in scope and reads the
// ledger, and hands each row's decision to show, in file order. Nothing is
// stored and nothing is written ('importer plan').
func (fd *Feeding) Preview(ctx context.Context, f Inspected, show func(importer.ReportRow, importer.Resident, importer.Decision) error) (importer.PlanCounts, int, error) {
	imp := importer.Import{ID: f.ID(), File: f.Name, Options: f.Options, RosterAsOf: f.WrittenAt.UTC()}
	// Two passes over the file, as streams: the scopes to list, then the
	// decisions.
	wants := newScopeWants(f.Options)
	err := fd.fileRows(f, func(row importer.ReportRow, r importer.Resident) error {
		if row.Result.Outcome == "" {
			wants.add(r)
		}
		return nil
	})
	if err != nil {
		return importer.PlanCounts{}, 0, err
	}
	var pages []importer.SnapshotPage
	if f.Options.Mode.Matches() {
		err := fd.list(ctx, "", wants.sorted(), nil, func(page importer.SnapshotPage, _ bool) error {
			pages = append(pages, page)
			return nil
		})
		if err != nil {
			return importer.PlanCounts{}, 0, err
		}
	}
	snap := snapshotOf(pages)
	rows := func(yield func(importer.ReportRow, error) bool) {
		stop := errors.New("stop")
		err := fd.fileRows(f, func(row importer.ReportRow, _ importer.Resident) error {
			if !yield(row, nil) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			yield(importer.ReportRow{}, err)
		}
	}
	counts, err := fd.decideRows(ctx, imp, snap, rows, show)
	return counts, snap.Len(), err
}

// fileRows reads an inspected file as a split would: every row, with the
// outcome of an invalid or duplicate one, and the resident of a valid one.
func (fd *Feeding) fileRows(f Inspected, each func(importer.ReportRow, importer.Resident) error) error {
	rows, err := source.OpenFile(f.Path, f.Options.Format, f.Size, source.Options{Limits: f.Limits, Delimiter: f.Options.DelimiterRune(), Mapping: f.Options.Mapping, Sheet: f.Options.Sheet})
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
