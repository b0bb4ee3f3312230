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
}

// SplitStore is what a split needs of the state store.
type SplitStore interface {
	RowStates(ctx context.Context, importID string, rows []int) ([]importer.RowState, error)
	SaveInput(ctx context.Context, importID string, rows []importer.Row, results []importer.RowResult) error
	SetTotal(ctx context.Context, importID string, total int, columns, unknown []string) (done bool, err error)
}

// SplitResult counts what a split did.
type SplitResult struct {
	// Total is the number of records in the file.
	Total int
	// Enqueued is the number of submit tasks put on the queue (a task
	// already there counts too); Skipped, the valid rows left alone because
	// they are resolved or their job is being followed.
	Enqueued, Skipped int
	// Invalid and Duplicate count the rows resolved without sending.
	Invalid, Duplicate int
}

// splitBatch is how many rows a split reads before it talks to Redis.
const splitBatch = 500

// Split validates every row of a file, records invalid and duplicate rows at
// once, and enqueues one submit task per valid row under its deterministic
// task id. It is safe to run again on the same import: rows that are resolved
// or whose job is being followed are left alone, and a task still on the
// queue is not enqueued twice. When every row already has an outcome it
// enqueues the finalize.
func Split(ctx context.Context, q Enqueuer, st SplitStore, imp importer.Import, rows RowReader, maxRetry int) (SplitResult, error) {
	var res SplitResult
	if maxRetry <= 0 {
		maxRetry = Config{}.WithDefaults().MaxRetry
	}
	v := importer.NewValidator(imp.Options)
	batch := make([]importer.Row, 0, splitBatch)
	for eof := false; !eof; {
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
		if err := splitBatchOf(ctx, q, st, imp, v, batch, maxRetry, &res); err != nil {
			return res, err
		}
		res.Total += len(batch)
	}
	done, err := st.SetTotal(ctx, imp.ID, res.Total, rows.Columns(), rows.UnknownColumns())
	if err != nil {
		return res, err
	}
	if done {
		return res, EnqueueFinalize(ctx, q, imp.ID, imp.Round)
	}
	return res, nil
}

func splitBatchOf(ctx context.Context, q Enqueuer, st SplitStore, imp importer.Import, v *importer.Validator, batch []importer.Row, maxRetry int, res *SplitResult) error {
	now := time.Now().UTC()
	var results []importer.RowResult
	var submits []SubmitPayload
	var numbers []int
	for _, row := range batch {
		resident, problems, dupOf := v.Check(row)
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
			submits = append(submits, SubmitPayload{ImportID: imp.ID, Row: row.Number, Line: row.Line, Vendor: imp.Options.Vendor, Resident: resident,
				Deadline: imp.Deadline(), Verify: imp.Options.Verify})
			numbers = append(numbers, row.Number)
		}
	}
	states, err := st.RowStates(ctx, imp.ID, numbers)
	if err != nil {
		return err
	}
	if err := st.SaveInput(ctx, imp.ID, batch, results); err != nil {
		return err
	}
	for i, p := range submits {
		if s := states[i]; s.Resolved || (s.JobID != "" && s.Check > 0) {
			res.Skipped++
			continue
		}
		task, opts, err := NewSubmitTask(p, maxRetry)
		if err != nil {
			return err
		}
		if err := enqueue(ctx, q, task, opts...); err != nil {
			return err
		}
		res.Enqueued++
	}
	return nil
}
