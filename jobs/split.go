package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// RowReader yields a file's rows in order; *source.Reader is one.
type RowReader interface {
	Next() (importer.Row, error)
	Columns() []string
	UnknownColumns() []string
	IgnoredColumns() []string
	// CheckColumns says why the file cannot be imported although it can
	// be read: none of its columns is a resident's field.
	CheckColumns() error
}

// SplitResult counts what a split found.
type SplitResult struct {
	// Total is the number of records in the file.
	Total int
	// Valid counts the rows to send; the feed queues them.
	Valid int
	// Invalid and Duplicate count the rows resolved without sending.
	Invalid, Duplicate int
}

// splitBatch is how many rows a split reads before it talks to Redis.
const splitBatch = 1000

// Split reads a file once, as a stream: it validates every row, stores its
// original record compactly (for the feed and the report), and records
// invalid and duplicate rows at once. Then it starts the import's feed,
// which queues the valid rows' submits a window at a time (see Feed) — for
// a sync, its plan first (see Plan) — or, when every row already has an
// outcome, the finalize.
//
// It is safe to run again on the same import: stored records are the same,
// an outcome is recorded once, and the new feed passes over rows that are
// resolved or in flight without queuing them twice.
func (sr *Starting) Split(ctx context.Context, imp importer.Import, rows RowReader) (SplitResult, error) {
	st := sr.store
	var res SplitResult
	v := importer.NewValidator(imp.Options)
	batch := make([]importer.Row, 0, splitBatch)
	var header []string
	for eof := false; !eof; {
		if err := ctx.Err(); err != nil {
			return res, err // what is stored stays: a later split goes on
		}
		batch = batch[:0]
		for len(batch) < splitBatch {
			row, err := rows.Next()
			if errors.Is(err, io.EOF) {
				eof = true
				break
			}
			if err != nil {
				return res, err
			}
			batch = append(batch, row)
		}
		if header == nil {
			var err error
			if header, err = st.InputHeader(ctx, imp.ID, rows.Columns()); err != nil {
				return res, err
			}
		}
		if err := st.SaveInput(ctx, imp.ID, header, batch, checkBatch(v, batch, &res)); err != nil {
			return res, err
		}
		res.Total += len(batch)
	}
	done, err := st.SetTotal(ctx, imp.ID, res.Total, importer.FileColumns{Names: rows.Columns(), Unknown: rows.UnknownColumns(), Ignored: rows.IgnoredColumns(),
		NotTaken: imp.Options.Vendor.NotTaken(rows.Columns(), imp.Options.Mapping)})
	if err != nil {
		return res, err
	}
	if done {
		return res, EnqueueFinalize(ctx, sr.queue, imp.ID, imp.Round)
	}
	gen, err := st.StartFeed(ctx, imp.ID)
	if err != nil {
		return res, err
	}
	if imp.Options.Mode.Matches() {
		// A sync decides every row before the first write; its plan
		// starts the feed.
		return res, EnqueuePlan(ctx, sr.queue, PlanPayload{ImportID: imp.ID, Gen: gen})
	}
	return res, EnqueueFeed(ctx, sr.queue, FeedPayload{ImportID: imp.ID, Gen: gen, Seq: 1}, 0)
}

// checkBatch validates a batch and returns the outcomes of the rows that
// are not to be sent.
func checkBatch(v *importer.Validator, batch []importer.Row, res *SplitResult) []importer.RowResult {
	now := time.Now().UTC()
	var results []importer.RowResult
	for _, row := range batch {
		_, problems, dupOf := v.Check(row)
		switch {
		case len(problems) > 0:
			res.Invalid++
			results = append(results, importer.RowResult{Row: row.Number, Line: row.Line, Outcome: importer.Invalid,
				ErrorCode: importer.CodeInvalid, Error: importer.JoinProblems(problems), At: now})
		case dupOf > 0:
			res.Duplicate++
			results = append(results, importer.RowResult{Row: row.Number, Line: row.Line, Outcome: importer.Duplicate,
				ErrorCode: importer.CodeDuplicate, Error: fmt.Sprintf("the same record as row %d", dupOf), At: now})
		default:
			res.Valid++
		}
	}
	return results
}
