package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// Progress returns how far an import has come.
func (s *Store) Progress(ctx context.Context, id string) (importer.Progress, error) {
	k := keysOf(id)
	pipe := s.rdb.Pipeline()
	total := pipe.HGet(ctx, k.meta, "total")
	counts := pipe.HGetAll(ctx, k.counts)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return importer.Progress{}, fmt.Errorf("error reading the progress of import %s: %w", id, err)
	}
	p := importer.Progress{Total: -1, Counts: map[importer.Outcome]int{}}
	if t, err := total.Int(); err == nil {
		p.Total = t
	}
	for k, v := range counts.Val() {
		n, _ := strconv.Atoi(v)
		if k == "resolved" {
			p.Resolved = n
		} else {
			p.Counts[importer.Outcome(k)] = n
		}
	}
	return p, nil
}

// Stats returns an import's counters.
func (s *Store) Stats(ctx context.Context, id string) (map[string]int, error) {
	vals, err := s.rdb.HGetAll(ctx, keysOf(id).stats).Result()
	if err != nil {
		return nil, fmt.Errorf("error reading the counters of import %s: %w", id, err)
	}
	out := make(map[string]int, len(vals))
	for k, v := range vals {
		out[k], _ = strconv.Atoi(v)
	}
	return out, nil
}

// Summary returns an import's summary as it stands.
func (s *Store) Summary(ctx context.Context, id string) (importer.Summary, error) {
	imp, err := s.Import(ctx, id)
	if err != nil {
		return importer.Summary{}, err
	}
	p, err := s.Progress(ctx, id)
	if err != nil {
		return importer.Summary{}, err
	}
	stats, err := s.Stats(ctx, id)
	if err != nil {
		return importer.Summary{}, err
	}
	return importer.NewSummary(imp, p, stats), nil
}

// Rows yields the rows of an import in input order, with their outcomes,
// planned updates and original columns, reading Redis in batches.
func (s *Store) Rows(ctx context.Context, id string, total int) iter.Seq2[importer.ReportRow, error] {
	const batch = 5 * inputChunk
	k := keysOf(id)
	return func(yield func(importer.ReportRow, error) bool) {
		header, err := s.header(ctx, k)
		if err != nil {
			yield(importer.ReportRow{}, fmt.Errorf("error reading the header of import %s: %w", id, err))
			return
		}
		for first := 1; first <= total; first += batch {
			last := min(total, first+batch-1)
			fields := make([]string, 0, last-first+1)
			for n := first; n <= last; n++ {
				fields = append(fields, strconv.Itoa(n))
			}
			var chunks []int
			for c := chunkOf(first); c <= chunkOf(last); c++ {
				chunks = append(chunks, c)
			}
			// The outcomes and a sync's planned updates, in one round trip.
			pipe := s.rdb.Pipeline()
			resultsCmd, plansCmd := pipe.HMGet(ctx, k.results, fields...), pipe.HMGet(ctx, k.plan, fields...)
			if _, err := pipe.Exec(ctx); err != nil {
				yield(importer.ReportRow{}, fmt.Errorf("error reading rows %d-%d of import %s: %w", first, last, id, err))
				return
			}
			results, plans := resultsCmd.Val(), plansCmd.Val()
			records, err := s.chunks(ctx, k, header, chunks)
			if err != nil {
				yield(importer.ReportRow{}, fmt.Errorf("error reading rows %d-%d of import %s: %w", first, last, id, err))
				return
			}
			for i := range fields {
				n := first + i
				rec := records[chunkOf(n)][(n-1)%inputChunk]
				row := importer.ReportRow{Result: importer.RowResult{Row: n, Line: rec.line}, Columns: rec.cols}
				if v, ok := results[i].(string); ok {
					if err := decodeResult(v, &row.Result); err != nil {
						yield(row, fmt.Errorf("error decoding the result of row %d: %w", n, err))
						return
					}
				}
				if v, ok := plans[i].(string); ok {
					// The row was planned as an update of a resident.
					var u importer.Update
					if err := json.Unmarshal([]byte(v), &u); err != nil {
						yield(row, fmt.Errorf("error decoding the plan of row %d: %w", n, err))
						return
					}
					row.Planned = &u
					if row.Result.RecordID == "" && row.Result.Outcome != "" {
						row.Result.RecordID = u.RecordID
					}
					if row.Result.Error == "" && row.Result.Outcome.Fine() {
						row.Result.Error = u.Note // what the plan noted: a match taken as gone, a difference kept
					}
				}
				row.Result.Action = importer.ActionOf(row.Result, row.Planned != nil && !row.Planned.Create)
				if !yield(row, nil) {
					return
				}
			}
		}
	}
}
