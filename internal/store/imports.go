package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// CreateImport stores a new import, or returns the one already stored under
// the same id; created tells which.
func (s *Store) CreateImport(ctx context.Context, imp importer.Import) (stored importer.Import, created bool, err error) {
	k := keysOf(imp.ID)
	b, err := json.Marshal(imp)
	if err != nil {
		return imp, false, fmt.Errorf("error encoding import %s: %w", imp.ID, err)
	}
	created, err = s.rdb.HSetNX(ctx, k.meta, "import", b).Result()
	if err != nil {
		return imp, false, fmt.Errorf("error creating import %s: %w", imp.ID, err)
	}
	if created {
		// The import's own keys in one transaction (one cluster slot).
		pipe := s.rdb.TxPipeline()
		// Anything else under the id was left by workers that wrote for
		// an import Redis had lost (their tasks were in flight): not this
		// import's.
		pipe.Del(ctx, k.state, k.results, k.counts, k.input, k.stats, k.snapshot, k.plan, k.ceiling)
		pipe.HSet(ctx, k.meta, "total", -1, "retention_seconds", int64(imp.Retention.Seconds()))
		if _, err := pipe.Exec(ctx); err != nil {
			return imp, false, fmt.Errorf("error creating import %s: %w", imp.ID, err)
		}
	}
	stored, err = s.Import(ctx, imp.ID)
	if err != nil {
		return stored, created, err
	}
	// The indexes shared by every import live in other slots: written
	// apart, and the list again on every start, so that a process that
	// died in between leaves no import out of it.
	pipe := s.rdb.Pipeline()
	pipe.ZAddNX(ctx, importsKey, redis.Z{Score: float64(stored.CreatedAt.UnixMilli()), Member: imp.ID})
	if created && imp.ContentKey != "" {
		// The latest import of the content: what a new run of it is told
		// about.
		pipe.Set(ctx, contentKey(imp.ContentKey), imp.ID, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return stored, created, fmt.Errorf("error listing import %s: %w", imp.ID, err)
	}
	return stored, created, nil
}

// Epoch returns the id of this Redis's life, making it when there is none
// (a new Redis, or one that lost its data); made tells which. Imports record
// the epoch they were made in, so that an import the importer knew and
// Redis no longer has can be told apart from one never started.
func (s *Store) Epoch(ctx context.Context) (epoch string, made bool, err error) {
	b := make([]byte, 8)
	rand.Read(b)
	fresh := time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
	made, err = s.rdb.SetNX(ctx, epochKey, fresh, 0).Result()
	if err != nil {
		return "", false, fmt.Errorf("error reading the Redis epoch: %w", err)
	}
	if made {
		return fresh, true, nil
	}
	epoch, err = s.rdb.Get(ctx, epochKey).Result()
	if errors.Is(err, redis.Nil) {
		return s.Epoch(ctx) // deleted in between: make it again
	}
	if err != nil {
		return "", false, fmt.Errorf("error reading the Redis epoch: %w", err)
	}
	return epoch, false, nil
}

func contentKey(key string) string { return "importer:content:" + key }

// ImportByContent returns the id of the latest import of a content key
// (importer.ContentKey); ok is false when there is none.
func (s *Store) ImportByContent(ctx context.Context, key string) (id string, ok bool, err error) {
	id, err = s.rdb.Get(ctx, contentKey(key)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("error finding the import of a content: %w", err)
	}
	return id, true, nil
}

func claimKey(path string) string { return "importer:claim:" + path }

// Claim takes the lease of a file for owner, for ttl, unless another owner
// holds it; it reports whether owner holds it now.
func (s *Store) Claim(ctx context.Context, path, owner string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, claimKey(path), owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("error claiming %s: %w", path, err)
	}
	if ok {
		return true, nil
	}
	held, err := s.rdb.Get(ctx, claimKey(path)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("error claiming %s: %w", path, err)
	}
	if held == owner {
		return true, s.rdb.Expire(ctx, claimKey(path), ttl).Err()
	}
	return false, nil
}

// Claimed reports whether anyone holds the lease of a file.
func (s *Store) Claimed(ctx context.Context, path string) (bool, error) {
	n, err := s.rdb.Exists(ctx, claimKey(path)).Result()
	if err != nil {
		return false, fmt.Errorf("error reading the claim of %s: %w", path, err)
	}
	return n == 1, nil
}

// Unclaim gives a file's lease up, if owner holds it.
func (s *Store) Unclaim(ctx context.Context, path, owner string) error {
	if held, err := s.rdb.Get(ctx, claimKey(path)).Result(); err == nil && held == owner {
		return s.rdb.Del(ctx, claimKey(path)).Err()
	}
	return nil
}

// Import returns a stored import, or importer.ErrImportNotFound.
func (s *Store) Import(ctx context.Context, id string) (importer.Import, error) {
	vals, err := s.rdb.HGetAll(ctx, keysOf(id).meta).Result()
	if err != nil {
		return importer.Import{}, fmt.Errorf("error reading import %s: %w", id, err)
	}
	raw, ok := vals["import"]
	if !ok {
		return importer.Import{}, fmt.Errorf("import %s: %w", id, importer.ErrImportNotFound)
	}
	var imp importer.Import
	if err := json.Unmarshal([]byte(raw), &imp); err != nil {
		return importer.Import{}, fmt.Errorf("error decoding import %s: %w", id, err)
	}
	imp.Total, _ = strconv.Atoi(vals["total"])
	if c := vals["columns"]; c != "" {
		_ = json.Unmarshal([]byte(c), &imp.Columns)
	}
	if c := vals["unknown"]; c != "" {
		_ = json.Unmarshal([]byte(c), &imp.UnknownColumns)
	}
	if c := vals["ignored"]; c != "" {
		_ = json.Unmarshal([]byte(c), &imp.IgnoredColumns)
	}
	if c := vals["not_taken"]; c != "" {
		_ = json.Unmarshal([]byte(c), &imp.NotTakenColumns)
	}
	imp.Stopped = vals["stopped"]
	imp.Round, _ = strconv.Atoi(vals["round"])
	if r := vals["round_at"]; r != "" {
		imp.RoundStartedAt, _ = time.Parse(time.RFC3339Nano, r)
	}
	if e := vals["expires_at"]; e != "" {
		imp.ExpiresAt, _ = time.Parse(time.RFC3339Nano, e)
	}
	if c := vals["cancelled_at"]; c != "" {
		imp.CancelledAt, _ = time.Parse(time.RFC3339Nano, c)
	}
	if a := vals["approved_at"]; a != "" {
		imp.ApprovedAt, _ = time.Parse(time.RFC3339Nano, a)
	}
	if f := vals["finished_at"]; f != "" {
		imp.FinishedAt, _ = time.Parse(time.RFC3339Nano, f)
	}
	return imp, nil
}

// Refollow records, for an import run again, the options of how it is
// followed (a re-run's deadline, --verify and guards win over the first
// run's) and the folder of the client's report.
func (s *Store) Refollow(ctx context.Context, id string, opts importer.Options, reportDir string) error {
	k := keysOf(id)
	raw, err := s.rdb.HGet(ctx, k.meta, "import").Result()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("import %s: %w", id, importer.ErrImportNotFound)
	}
	if err != nil {
		return fmt.Errorf("error reading import %s: %w", id, err)
	}
	var imp importer.Import
	if err := json.Unmarshal([]byte(raw), &imp); err != nil {
		return fmt.Errorf("error decoding import %s: %w", id, err)
	}
	imp.Options.Deadline, imp.Options.Verify, imp.ReportDir = opts.Deadline, opts.Verify, reportDir
	imp.Options.MaxCreates, imp.Options.MaxUpdates, imp.Options.Priority = opts.MaxCreates, opts.MaxUpdates, opts.Priority
	b, err := json.Marshal(imp)
	if err != nil {
		return fmt.Errorf("error encoding import %s: %w", id, err)
	}
	if err := s.rdb.HSet(ctx, k.meta, "import", b).Err(); err != nil {
		return fmt.Errorf("error saving import %s: %w", id, err)
	}
	return nil
}

// forgetContentScript removes a content key's index entry if it still
// leads to the import.
//
// Input:
// KEYS[1] -> importer:content:<content key>
// ARGV[1] -> import id
//
// Output:
// 1 when it removed the entry, else 0.
var forgetContentScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Delete removes every key of an import — its record, rows, outcomes,
// counters, the index entries of its write jobs — and returns how many keys
// it removed. Tasks of the import still on a queue find it gone and do
// nothing.
func (s *Store) Delete(ctx context.Context, id string) (int, error) {
	k := keysOf(id)
	imp, err := s.Import(ctx, id)
	if err != nil {
		return 0, err
	}
	var jobKeys []string
	total := max(imp.Total, 0)
	for first := 1; first <= total; first += 1000 {
		fields := make([]string, 0, 1000)
		for n := first; n < first+1000 && n <= total; n++ {
			fields = append(fields, strconv.Itoa(n))
		}
		results, err := s.rdb.HMGet(ctx, k.results, fields...).Result()
		if err != nil {
			return 0, fmt.Errorf("error reading import %s: %w", id, err)
		}
		states, err := s.rdb.HMGet(ctx, k.state, fields...).Result()
		if err != nil {
			return 0, fmt.Errorf("error reading import %s: %w", id, err)
		}
		for i := range fields {
			job := ""
			if v, ok := results[i].(string); ok {
				var r importer.RowResult
				if decodeResult(v, &r) == nil {
					job = r.JobID
				}
			}
			if v, ok := states[i].(string); ok {
				if st := parseState(v); st.JobID != "" {
					job = st.JobID
				}
			}
			if job != "" {
				jobKeys = append(jobKeys, jobKey(job), jobEventKey(job))
			}
		}
	}
	// The job indexes are spread over the cluster's slots: one DEL each,
	// pipelined 500 at a time.
	deleted := 0
	for len(jobKeys) > 0 {
		batch := jobKeys[:min(len(jobKeys), 500)]
		jobKeys = jobKeys[len(batch):]
		pipe := s.rdb.Pipeline()
		dels := make([]*redis.IntCmd, len(batch))
		for i, key := range batch {
			dels[i] = pipe.Del(ctx, key)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return deleted, fmt.Errorf("error deleting import %s: %w", id, err)
		}
		for _, d := range dels {
			deleted += int(d.Val())
		}
	}
	// The import's keys first (one slot), then the shared indexes: a
	// process that dies in between leaves an entry that leads nowhere
	// (and is skipped), never rows nobody can find.
	n, err := s.rdb.Del(ctx, k.meta, k.state, k.results, k.input, k.counts, k.stats, k.snapshot, k.plan, k.ceiling).Result()
	if err != nil {
		return deleted, fmt.Errorf("error deleting import %s: %w", id, err)
	}
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, importsKey, id)
	if imp.ContentKey != "" {
		// The content's index leads to this import no longer.
		forgetContentScript.Eval(ctx, pipe, []string{contentKey(imp.ContentKey)}, id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return deleted + int(n), fmt.Errorf("error deleting import %s: %w", id, err)
	}
	return deleted + int(n), nil
}

// ImportsBefore lists the ids of the imports made before t, oldest first.
func (s *Store) ImportsBefore(ctx context.Context, t time.Time) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, importsKey, &redis.ZRangeBy{Min: "-inf", Max: "(" + strconv.FormatInt(t.UnixMilli(), 10)}).Result()
	if err != nil {
		return nil, fmt.Errorf("error listing the imports: %w", err)
	}
	return ids, nil
}

// Resume clears an import's stop, so that its rows are sent again.
func (s *Store) Resume(ctx context.Context, id string) error {
	if err := s.rdb.HDel(ctx, keysOf(id).meta, "stopped").Err(); err != nil {
		return fmt.Errorf("error resuming import %s: %w", id, err)
	}
	return nil
}

// Stop marks an import stopped, keeping the first reason given.
func (s *Store) Stop(ctx context.Context, id, reason string) error {
	if err := s.rdb.HSetNX(ctx, keysOf(id).meta, "stopped", reason).Err(); err != nil {
		return fmt.Errorf("error stopping import %s: %w", id, err)
	}
	return nil
}

// Approve records that an operator approved the import's plan past its
// guards.
func (s *Store) Approve(ctx context.Context, id string, at time.Time) error {
	if err := s.rdb.HSet(ctx, keysOf(id).meta, "approved_at", at.UTC().Format(time.RFC3339Nano)).Err(); err != nil {
		return fmt.Errorf("error approving import %s: %w", id, err)
	}
	return nil
}

// Cancel marks an import cancelled, once; it reports whether this call did.
func (s *Store) Cancel(ctx context.Context, id string, at time.Time) (bool, error) {
	ok, err := s.rdb.HSetNX(ctx, keysOf(id).meta, "cancelled_at", at.UTC().Format(time.RFC3339Nano)).Result()
	if err != nil {
		return false, fmt.Errorf("error cancelling import %s: %w", id, err)
	}
	return ok, nil
}

// Imports lists the ids of every import, newest first.
func (s *Store) Imports(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.ZRevRange(ctx, importsKey, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("error listing the imports: %w", err)
	}
	return ids, nil
}

// ImportsPage lists the ids of at most limit imports, newest first, from
// the offset-th, and the number of imports in all.
func (s *Store) ImportsPage(ctx context.Context, offset, limit int) (ids []string, total int, err error) {
	pipe := s.rdb.Pipeline()
	page := pipe.ZRevRange(ctx, importsKey, int64(offset), int64(offset+limit-1))
	count := pipe.ZCard(ctx, importsKey)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, fmt.Errorf("error listing the imports: %w", err)
	}
	return page.Val(), int(count.Val()), nil
}

// Finish records the time the import's report was written, and from then
// on lets its rows — personal data — expire after the import's retention.
// What stays is the import's record and counters, for status.
func (s *Store) Finish(ctx context.Context, id string, at time.Time) error {
	k := keysOf(id)
	secs, err := s.rdb.HGet(ctx, k.meta, "retention_seconds").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("error finishing import %s: %w", id, err)
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, k.meta, "finished_at", at.UTC().Format(time.RFC3339Nano))
	if secs > 0 {
		ttl := time.Duration(secs) * time.Second
		for _, key := range k.rowKeys() {
			pipe.Expire(ctx, key, ttl)
		}
		pipe.HSet(ctx, k.meta, "expires_at", at.Add(ttl).UTC().Format(time.RFC3339Nano))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error finishing import %s: %w", id, err)
	}
	return nil
}
