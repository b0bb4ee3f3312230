// Package store keeps the state of imports in Redis: the import's record, each
// row's state (queued, sending, job id and status-check number), outcomes and
// their counters, the original records for the report, and request counters.
//
// All keys of one import share a hash tag ("imp:{ID}:..."), so an import
// lives on one Redis Cluster slot and its Lua scripts stay atomic.
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// Store keeps the state of imports in Redis; it is the jobs.Store of the
// lifecycle (cmd checks so at compile time).
type Store struct {
	rdb redis.UniversalClient
}

// New returns a Store on a Redis client.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

// importsKey is a sorted set of every import id by creation time.
const importsKey = "importer:imports"

// epochKey names this Redis's life as the importer knows it: it is made
// once, by the first importer process that connects, and is gone only when
// Redis loses its data (restarted without persistence, or flushed).
const epochKey = "importer:epoch"

type keys struct{ meta, state, results, input, counts, stats string }

func keysOf(id string) keys {
	p := "imp:{" + id + "}:"
	return keys{meta: p + "meta", state: p + "state", results: p + "results", input: p + "input", counts: p + "counts", stats: p + "stats"}
}

// Row state encodings in the state hash. A row gets an entry when the feed
// queues its submit ("q"), or when 'importer retry' takes its outcome back,
// and loses it when it is resolved; a row with no entry is resolved or not
// fed yet.
//
//	q                 queued: its create is to be sent
//	r                 its resident is to be looked up, then created if
//	                  not found (a row in doubt that 'retry --in-doubt' took)
//	w:<job>           to be retried through retry-write of the failed job
//	s[:<n>][|w:<job>] a create (or the retry-write of job) was being sent,
//	                  and may have reached the API; n lookups found nothing
//	j:<n>:<job>       following the write job, status check n scheduled
//	                  (0: none is, e.g. the import stopped)
const (
	stateQueued  = "q"
	stateLookUp  = "r"
	stateSending = "s"
	retryPrefix  = "w:" // w:<job id>
	jobPrefix    = "j:" // j:<check number>:<job id>
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
		pipe := s.rdb.TxPipeline()
		// Anything else under the id was left by workers that wrote for
		// an import Redis had lost (their tasks were in flight): not this
		// import's.
		pipe.Del(ctx, k.state, k.results, k.counts, k.input, k.stats)
		pipe.HSet(ctx, k.meta, "total", -1, "retention_seconds", int64(imp.Retention.Seconds()))
		pipe.ZAdd(ctx, importsKey, redis.Z{Score: float64(imp.CreatedAt.UnixMilli()), Member: imp.ID})
		if imp.ContentKey != "" {
			// The latest import of the content: what a new run of it is
			// told about.
			pipe.Set(ctx, contentKey(imp.ContentKey), imp.ID, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return imp, false, fmt.Errorf("error creating import %s: %w", imp.ID, err)
		}
	}
	stored, err = s.Import(ctx, imp.ID)
	return stored, created, err
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
	if f := vals["finished_at"]; f != "" {
		imp.FinishedAt, _ = time.Parse(time.RFC3339Nano, f)
	}
	return imp, nil
}

// Refollow records, for an import run again, the options of how it is
// followed (a re-run's deadline and --verify win over the first run's) and
// the folder of the client's report.
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
	b, err := json.Marshal(imp)
	if err != nil {
		return fmt.Errorf("error encoding import %s: %w", id, err)
	}
	if err := s.rdb.HSet(ctx, k.meta, "import", b).Err(); err != nil {
		return fmt.Errorf("error saving import %s: %w", id, err)
	}
	return nil
}

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
	deleted := 0
	for len(jobKeys) > 0 {
		batch := jobKeys[:min(len(jobKeys), 500)]
		jobKeys = jobKeys[len(batch):]
		n, err := s.rdb.Del(ctx, batch...).Result()
		if err != nil {
			return deleted, fmt.Errorf("error deleting import %s: %w", id, err)
		}
		deleted += int(n)
	}
	pipe := s.rdb.TxPipeline()
	del := pipe.Del(ctx, k.meta, k.state, k.results, k.input, k.counts, k.stats)
	pipe.ZRem(ctx, importsKey, id)
	if imp.ContentKey != "" {
		// The content's index leads to this import no longer.
		pipe.Eval(ctx, `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, []string{contentKey(imp.ContentKey)}, id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return deleted, fmt.Errorf("error deleting import %s: %w", id, err)
	}
	return deleted + int(del.Val()), nil
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
		for _, key := range []string{k.input, k.results, k.state} {
			pipe.Expire(ctx, key, ttl)
		}
		pipe.HSet(ctx, k.meta, "expires_at", at.Add(ttl).UTC().Format(time.RFC3339Nano))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error finishing import %s: %w", id, err)
	}
	return nil
}

// RowState returns one row's state, in one round trip.
func (s *Store) RowState(ctx context.Context, id string, row int) (RowState, error) {
	k := keysOf(id)
	field := strconv.Itoa(row)
	pipe := s.rdb.Pipeline()
	state := pipe.HGet(ctx, k.state, field)
	resolved := pipe.HExists(ctx, k.results, field)
	stopped := pipe.HGet(ctx, k.meta, "stopped")
	cancelled := pipe.HExists(ctx, k.meta, "cancelled_at")
	known := pipe.HExists(ctx, k.meta, "import")
	_, _ = pipe.Exec(ctx) // errors are read per command: a missing field is not one
	for _, cmd := range []redis.Cmder{state, resolved, stopped, cancelled, known} {
		if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return RowState{}, fmt.Errorf("error reading row %d of import %s: %w", row, id, err)
		}
	}
	st := parseState(state.Val())
	st.Resolved = resolved.Val()
	st.Stopped = stopped.Val()
	st.Cancelled = cancelled.Val()
	st.Gone = !known.Val()
	return st, nil
}

// RowStates returns the states of many rows, in one round trip.
func (s *Store) RowStates(ctx context.Context, id string, rows []int) ([]RowState, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	k := keysOf(id)
	fields := make([]string, len(rows))
	for i, r := range rows {
		fields[i] = strconv.Itoa(r)
	}
	pipe := s.rdb.Pipeline()
	states := pipe.HMGet(ctx, k.state, fields...)
	results := pipe.HMGet(ctx, k.results, fields...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("error reading rows of import %s: %w", id, err)
	}
	out := make([]RowState, len(rows))
	for i := range rows {
		if v, ok := states.Val()[i].(string); ok {
			out[i] = parseState(v)
		}
		out[i].Resolved = results.Val()[i] != nil
	}
	return out, nil
}

func parseState(v string) RowState {
	switch {
	case strings.HasPrefix(v, stateSending):
		sending, retryOf, _ := strings.Cut(v[len(stateSending):], "|"+retryPrefix)
		n, _ := strconv.Atoi(strings.TrimPrefix(sending, ":"))
		return RowState{Sending: true, Lookups: n, RetryOf: retryOf}
	case strings.HasPrefix(v, retryPrefix):
		return RowState{RetryOf: v[len(retryPrefix):]}
	case v == stateLookUp:
		return RowState{LookFirst: true}
	case strings.HasPrefix(v, jobPrefix):
		n, job, _ := strings.Cut(v[len(jobPrefix):], ":")
		check, _ := strconv.Atoi(n)
		return RowState{JobID: job, Check: check}
	}
	return RowState{}
}

// setStateScript sets a row's state, only while the import exists: a
// worker that finds out late that Redis lost the import (its task was in
// flight) must not leave the row a state that a recovery of the import
// would take for its own. KEYS: meta, state. ARGV: row, state. Returns 0
// when the import is gone.
var setStateScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'import') == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

func (s *Store) setState(ctx context.Context, id string, row int, v string) error {
	k := keysOf(id)
	n, err := setStateScript.Run(ctx, s.rdb, []string{k.meta, k.state}, row, v).Int()
	if err != nil {
		return fmt.Errorf("error saving row %d of import %s: %w", row, id, err)
	}
	if n == 0 {
		return fmt.Errorf("row %d of import %s: %w", row, id, importer.ErrImportNotFound)
	}
	return nil
}

// MarkLookups records the searches for a Sending row's resident.
func (s *Store) MarkLookups(ctx context.Context, id string, row, n int) error {
	return s.setState(ctx, id, row, stateSending+":"+strconv.Itoa(n))
}

// Unsend forgets that a create (or the retry-write of job retryOf) was
// being sent for the row: it waits to be sent again.
func (s *Store) Unsend(ctx context.Context, id string, row int, retryOf string) error {
	if retryOf != "" {
		return s.setState(ctx, id, row, retryPrefix+retryOf)
	}
	return s.setState(ctx, id, row, stateQueued)
}

// markSendingScript marks a row as being sent, unless it must not be: its
// outcome is recorded, or the import was cancelled (a cancel and a send
// cannot both win), or the import is gone. KEYS: meta, state, results.
// ARGV: row, state. Returns 1, or 0 (not to send), or -1 (gone).
var markSendingScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'import') == 0 then return -1 end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[1], 'cancelled_at') == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// MarkSending records that a create (or, with retryOf, the retry-write of
// that failed job) is about to be sent for the row, unless the row has its
// outcome or the import was cancelled (importer.ErrNotToSend) or is gone.
func (s *Store) MarkSending(ctx context.Context, id string, row int, retryOf string) error {
	v := stateSending
	if retryOf != "" {
		v += "|" + retryPrefix + retryOf
	}
	k := keysOf(id)
	n, err := markSendingScript.Run(ctx, s.rdb, []string{k.meta, k.state, k.results}, row, v).Int()
	switch {
	case err != nil:
		return fmt.Errorf("error saving row %d of import %s: %w", row, id, err)
	case n == 0:
		return fmt.Errorf("row %d of import %s: %w", row, id, importer.ErrNotToSend)
	case n < 0:
		return fmt.Errorf("row %d of import %s: %w", row, id, importer.ErrImportNotFound)
	}
	return nil
}

// jobIndexTTL is how long a job id leads back to its row, for webhooks.
const jobIndexTTL = 8 * 24 * time.Hour

func jobKey(jobID string) string      { return "importer:job:" + jobID }
func jobEventKey(jobID string) string { return "importer:jobevent:" + jobID }

// SetJob records the write's job id, with status check number 1, and, for
// webhooks, indexes the job so a webhook finds its row. The index costs a
// key per row for jobIndexTTL, so it is kept only where webhooks come.
func (s *Store) SetJob(ctx context.Context, id string, row int, jobID string, forWebhooks bool, stats ...string) error {
	if !forWebhooks && len(stats) == 0 {
		return s.setState(ctx, id, row, jobPrefix+"1:"+jobID)
	}
	k := keysOf(id)
	pipe := s.rdb.Pipeline()
	set := setStateScript.EvalSha(ctx, pipe, []string{k.meta, k.state}, row, jobPrefix+"1:"+jobID)
	if forWebhooks {
		pipe.Set(ctx, jobKey(jobID), id+"|"+strconv.Itoa(row), jobIndexTTL)
	}
	for _, stat := range stats {
		pipe.HIncrBy(ctx, k.stats, stat, 1)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	if err := set.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Not loaded yet (a new or restarted Redis): the rest was done.
		return s.setState(ctx, id, row, jobPrefix+"1:"+jobID)
	}
	if n, err := set.Int(); err != nil {
		return fmt.Errorf("error saving the job of row %d of import %s: %w", row, id, err)
	} else if n == 0 {
		return fmt.Errorf("row %d of import %s: %w", row, id, importer.ErrImportNotFound)
	}
	return nil
}

// JobRow finds the import and row of a write job.
func (s *Store) JobRow(ctx context.Context, jobID string) (string, int, bool, error) {
	v, err := s.rdb.Get(ctx, jobKey(jobID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("error finding job %s: %w", jobID, err)
	}
	id, row, _ := strings.Cut(v, "|")
	n, err := strconv.Atoi(row)
	if err != nil {
		return "", 0, false, fmt.Errorf("job %s: bad index %q", jobID, v)
	}
	return id, n, true, nil
}

// SaveJobEvent keeps a webhook's news of a job for two days.
func (s *Store) SaveJobEvent(ctx context.Context, ev importer.WriteEvent) error {
	b, _ := json.Marshal(ev)
	if err := s.rdb.Set(ctx, jobEventKey(ev.JobID), b, 48*time.Hour).Err(); err != nil {
		return fmt.Errorf("error saving the event of job %s: %w", ev.JobID, err)
	}
	return nil
}

// JobEvent reads what SaveJobEvent kept.
func (s *Store) JobEvent(ctx context.Context, jobID string) (importer.WriteEvent, bool, error) {
	b, err := s.rdb.Get(ctx, jobEventKey(jobID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return importer.WriteEvent{}, false, nil
	}
	if err != nil {
		return importer.WriteEvent{}, false, fmt.Errorf("error reading the event of job %s: %w", jobID, err)
	}
	var ev importer.WriteEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		return importer.WriteEvent{}, false, fmt.Errorf("error decoding the event of job %s: %w", jobID, err)
	}
	return ev, true, nil
}

// reopenScript takes a row's outcome back, uncounting it, and gives the
// row the state that says what is to be done with it, so that any feed
// (the retry's, or a later run's) does that and nothing else; the row is in
// flight again. KEYS: results, counts, state, meta. ARGV: row, outcome, job
// id of the outcome, new state. Returns 1 when it took the outcome back.
var reopenScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local old = cjson.decode(cur)
if old['o'] ~= ARGV[2] or (old['j'] or '') ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
redis.call('HINCRBY', KEYS[2], 'resolved', -1)
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
redis.call('HINCRBY', KEYS[4], 'fed', 1)
return 1
`)

// Reopen opens a finished import again, in a new round that starts now,
// and takes back the outcomes of the rows given (each only if it still is
// the outcome and job given), each with what is to be done with it: retried
// through retry-write, its job followed again, or its create sent again.
// It is one atomic step: interrupted before or after, never halfway, so the
// feed that follows it, or any later run of the import, does exactly what
// it planned. It returns the rows taken back.
func (s *Store) Reopen(ctx context.Context, id string, plans []importer.RetryPlan) ([]importer.RetryPlan, error) {
	k := keysOf(id)
	pipe := s.rdb.TxPipeline()
	pipe.HDel(ctx, k.meta, "finished_at", "expires_at")
	pipe.HIncrBy(ctx, k.meta, "round", 1)
	pipe.HSet(ctx, k.meta, "round_at", time.Now().UTC().Format(time.RFC3339Nano))
	for _, key := range []string{k.input, k.results, k.state} {
		pipe.Persist(ctx, key)
	}
	cmds := make([]*redis.Cmd, len(plans))
	for i, p := range plans {
		cmds[i] = reopenScript.Eval(ctx, pipe, []string{k.results, k.counts, k.state, k.meta}, p.Result.Row, string(p.Result.Outcome), p.Result.JobID, planState(p))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("error reopening import %s: %w", id, err)
	}
	var out []importer.RetryPlan
	for i, c := range cmds {
		if n, _ := c.Int(); n == 1 {
			out = append(out, plans[i])
		}
	}
	return out, nil
}

// planState is the row state that carries out a retry plan.
func planState(p importer.RetryPlan) string {
	switch p.Action {
	case importer.RetryWrite:
		return retryPrefix + p.Result.JobID
	case importer.FollowJob:
		return jobPrefix + "0:" + p.Result.JobID
	case importer.LookUpThenSend:
		return stateLookUp
	}
	return stateQueued
}

// replaceScript swaps a row's outcome for another, counting the change, and
// reopens a finished import. The new result's empty fields keep their old
// values (a record id learned earlier stays); a new result of another write
// job than the old one's changes nothing (news of an older job is stale). KEYS: results, counts, meta.
// ARGV: row, new outcome, result JSON, old outcome. Returns 0 (no change), 1
// (changed) or 2 (changed and reopened).
var replaceScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local old = cjson.decode(cur)
if old['o'] ~= ARGV[4] then return 0 end
local new = cjson.decode(ARGV[3])
if new['j'] and new['j'] ~= '' and old['j'] ~= new['j'] then return 0 end
local same = true
for k, v in pairs(old) do
  if new[k] == nil or new[k] == '' then new[k] = v end
end
for k, v in pairs(new) do
  if k ~= 't' and old[k] ~= v then same = false end
end
if same then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(new))
redis.call('HINCRBY', KEYS[2], ARGV[4], -1)
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if redis.call('HDEL', KEYS[3], 'finished_at') == 1 then
  redis.call('HDEL', KEYS[3], 'expires_at')
  redis.call('HINCRBY', KEYS[3], 'round', 1)
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[4])
  return 2
end
return 1
`)

// Replace changes a row's outcome from `from` to the result's.
func (s *Store) Replace(ctx context.Context, id string, r importer.RowResult, from importer.Outcome) (changed, reopened bool, err error) {
	k := keysOf(id)
	b, err := encodeResult(r)
	if err != nil {
		return false, false, fmt.Errorf("error encoding the result of row %d: %w", r.Row, err)
	}
	n, err := replaceScript.Run(ctx, s.rdb, []string{k.results, k.counts, k.meta, k.input}, r.Row, string(r.Outcome), b, string(from)).Int()
	if err != nil {
		return false, false, fmt.Errorf("error changing the outcome of row %d of import %s: %w", r.Row, id, err)
	}
	return n > 0, n == 2, nil
}

var advanceScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[2], 'import') == 0 then return 0 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local n, job = string.match(cur, '^j:(%d+):(.*)$')
if n ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], 'j:' .. ARGV[3] .. ':' .. job)
return 1
`)

// AdvanceCheck moves a row's status check number from `from` to `to` if it
// still is `from`.
func (s *Store) AdvanceCheck(ctx context.Context, id string, row int, from, to int) (bool, error) {
	k := keysOf(id)
	n, err := advanceScript.Run(ctx, s.rdb, []string{k.state, k.meta}, row, from, to).Int()
	if err != nil {
		return false, fmt.Errorf("error advancing the status check of row %d of import %s: %w", row, id, err)
	}
	return n == 1, nil
}

// resolveScript records an outcome once per row and counts it in the same
// step, then tells whether every row has one. A row that was in flight (it
// had a state) counts as landed, which makes room in the feed's window; when
// the feed waits for room (feed_wait) and there is enough (in flight at
// most feed_wake), this call takes the wait away and returns it, so that its
// caller wakes the feed. An outcome of a write job (ARGV[4] not empty) is
// stale while the row is in flight with anything else than following that
// job (a late webhook of an older job, after a retry), and changes nothing;
// a row already resolved keeps its outcome in any case.
// KEYS: results, counts, meta, state. ARGV: row, outcome, result JSON, job
// id or "", "unsent" to record the outcome only for a row that is neither
// being sent nor followed. Returns {flags, wait}: flags 2 when it recorded
// the outcome, plus 1 when the import is done, or 4 alone when the news was
// stale, or 8 alone when the import is gone, or 16 alone when the row was in
// flight; wait "gen:seq" or "".
var resolveScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[3], 'import') == 0 then return {8, ''} end
local recorded = 0
local wake = ''
if ARGV[4] ~= '' then
  local st = redis.call('HGET', KEYS[4], ARGV[1])
  if st and string.match(st, '^j:%d+:(.*)$') ~= ARGV[4] then return {4, ''} end
end
if ARGV[5] == 'unsent' then
  local st = redis.call('HGET', KEYS[4], ARGV[1])
  if st and (string.sub(st, 1, 1) == 's' or string.sub(st, 1, 2) == 'j:') then return {16, ''} end
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[3]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  redis.call('HINCRBY', KEYS[2], 'resolved', 1)
  if redis.call('HDEL', KEYS[4], ARGV[1]) == 1 then
    local landed = redis.call('HINCRBY', KEYS[3], 'landed', 1)
    local wait = redis.call('HGET', KEYS[3], 'feed_wait')
    if wait then
      local fed = tonumber(redis.call('HGET', KEYS[3], 'fed') or '0')
      if fed - landed <= tonumber(redis.call('HGET', KEYS[3], 'feed_wake') or '0') then
        redis.call('HDEL', KEYS[3], 'feed_wait')
        wake = wait
      end
    end
  end
  recorded = 2
end
local total = tonumber(redis.call('HGET', KEYS[3], 'total') or '-1')
local resolved = tonumber(redis.call('HGET', KEYS[2], 'resolved') or '0')
if total >= 0 and resolved >= total then recorded = recorded + 1 end
return {recorded, wake}
`)

// Resolve records a row's outcome and counts it, once per row.
func (s *Store) Resolve(ctx context.Context, id string, r importer.RowResult, stats ...string) (Resolution, error) {
	return s.resolve(ctx, id, r, "", "", stats...)
}

// ResolveJob records the outcome of the row's write job r.JobID, as
// Resolve does, unless the row no longer follows that job: then the news is
// stale, and nothing is recorded.
func (s *Store) ResolveJob(ctx context.Context, id string, r importer.RowResult, stats ...string) (Resolution, error) {
	return s.resolve(ctx, id, r, r.JobID, "", stats...)
}

// CancelUnsent records the outcome of a row a cancel kept from being sent,
// as Resolve does, unless the row is being sent or followed.
func (s *Store) CancelUnsent(ctx context.Context, id string, r importer.RowResult) (Resolution, error) {
	return s.resolve(ctx, id, r, "", "unsent")
}

func (s *Store) resolve(ctx context.Context, id string, r importer.RowResult, ofJob, only string, stats ...string) (Resolution, error) {
	k := keysOf(id)
	b, err := encodeResult(r)
	if err != nil {
		return Resolution{}, fmt.Errorf("error encoding the result of row %d: %w", r.Row, err)
	}
	keys := []string{k.results, k.counts, k.meta, k.state}
	var cmd *redis.Cmd
	if len(stats) == 0 {
		cmd = resolveScript.Run(ctx, s.rdb, keys, r.Row, string(r.Outcome), b, ofJob, only)
	} else {
		pipe := s.rdb.Pipeline()
		for _, stat := range stats {
			pipe.HIncrBy(ctx, k.stats, stat, 1)
		}
		cmd = resolveScript.EvalSha(ctx, pipe, keys, r.Row, string(r.Outcome), b, ofJob, only)
		_, _ = pipe.Exec(ctx) // errors are read per command
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The script is not loaded yet (a new or restarted Redis):
			// run it again, loading it; the counters were added.
			cmd = resolveScript.Run(ctx, s.rdb, keys, r.Row, string(r.Outcome), b, ofJob, only)
		}
	}
	vals, err := cmd.Slice()
	if err != nil || len(vals) != 2 {
		return Resolution{}, fmt.Errorf("error recording the outcome of row %d of import %s: %w", r.Row, id, errOr(err, "bad answer"))
	}
	n, _ := vals[0].(int64)
	if n == 8 {
		return Resolution{}, fmt.Errorf("row %d of import %s: %w", r.Row, id, importer.ErrImportNotFound)
	}
	if n == 16 {
		return Resolution{}, nil // in flight: not recorded
	}
	res := Resolution{Recorded: n&2 != 0, Done: n&1 != 0, Stale: n == 4}
	if wait, _ := vals[1].(string); wait != "" {
		gen, seq, _ := strings.Cut(wait, ":")
		res.WakeGen, _ = strconv.Atoi(gen)
		res.WakeSeq, _ = strconv.Atoi(seq)
	}
	return res, nil
}

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// InputHeader pins the header against which an import's records are stored
// compactly: the first split's proposal wins, and every later split uses
// the stored one.
func (s *Store) InputHeader(ctx context.Context, id string, proposed []string) ([]string, error) {
	k := keysOf(id)
	b, err := json.Marshal(proposed)
	if err != nil {
		return nil, fmt.Errorf("error encoding the header of import %s: %w", id, err)
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSetNX(ctx, k.meta, "header", b)
	stored := pipe.HGet(ctx, k.meta, "header")
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("error saving the header of import %s: %w", id, err)
	}
	var header []string
	if err := json.Unmarshal([]byte(stored.Val()), &header); err != nil {
		return nil, fmt.Errorf("error decoding the header of import %s: %w", id, err)
	}
	return header, nil
}

func (s *Store) header(ctx context.Context, k keys) ([]string, error) {
	raw, err := s.rdb.HGet(ctx, k.meta, "header").Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var header []string
	err = json.Unmarshal([]byte(raw), &header)
	return header, err
}

// SaveInput stores rows' original records, compactly against the header
// InputHeader returned, for the feed and the report; and it resolves the
// rows that already have their outcome (invalid and duplicate ones), in one
// round trip.
func (s *Store) SaveInput(ctx context.Context, id string, header []string, rows []importer.Row, results []importer.RowResult) error {
	k := keysOf(id)
	pipe := s.rdb.Pipeline()
	if len(rows) > 0 {
		pipe.HSet(ctx, k.input, encodeChunks(rows, header)...)
	}
	for _, r := range results {
		b, err := encodeResult(r)
		if err != nil {
			return fmt.Errorf("error encoding the result of row %d: %w", r.Row, err)
		}
		resolveScript.Eval(ctx, pipe, []string{k.results, k.counts, k.meta, k.state}, r.Row, string(r.Outcome), b, "", "")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error saving rows of import %s: %w", id, err)
	}
	return nil
}

// Inputs returns the stored records of rows, with their numbers and lines;
// a row with no stored record comes back with no columns.
func (s *Store) Inputs(ctx context.Context, id string, rows []int) ([]importer.Row, error) {
	k := keysOf(id)
	header, err := s.header(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("error reading the header of import %s: %w", id, err)
	}
	var chunks []int
	for _, r := range rows {
		if c := chunkOf(r); len(chunks) == 0 || !slices.Contains(chunks, c) {
			chunks = append(chunks, c)
		}
	}
	records, err := s.chunks(ctx, k, header, chunks)
	if err != nil {
		return nil, fmt.Errorf("error reading rows of import %s: %w", id, err)
	}
	out := make([]importer.Row, len(rows))
	for i, r := range rows {
		rec := records[chunkOf(r)][(r-1)%inputChunk]
		out[i] = importer.Row{Number: r, Line: rec.line, Columns: rec.cols}
	}
	return out, nil
}

// chunks reads and decodes stored chunks; a chunk not stored is empty.
func (s *Store) chunks(ctx context.Context, k keys, header []string, chunks []int) (map[int]map[int]storedRecord, error) {
	fields := make([]string, len(chunks))
	for i, c := range chunks {
		fields[i] = chunkField(c)
	}
	vals, err := s.rdb.HMGet(ctx, k.input, fields...).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[int]map[int]storedRecord, len(chunks))
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		recs, err := decodeChunk([]byte(raw), header)
		if err != nil {
			return nil, fmt.Errorf("rows %d-%d: %w", chunks[i]*inputChunk+1, (chunks[i]+1)*inputChunk, err)
		}
		out[chunks[i]] = recs
	}
	return out, nil
}

// SetTotal records that the file has been split: its number of records and
// its columns. It reports whether every row already has an outcome.
func (s *Store) SetTotal(ctx context.Context, id string, total int, columns importer.FileColumns) (bool, error) {
	k := keysOf(id)
	cols, _ := json.Marshal(columns.Names)
	unk, _ := json.Marshal(columns.Unknown)
	ign, _ := json.Marshal(columns.Ignored)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, k.meta, "total", total, "columns", cols, "unknown", unk, "ignored", ign)
	resolved := pipe.HGet(ctx, k.counts, "resolved")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("error saving the size of import %s: %w", id, err)
	}
	n, _ := resolved.Int()
	return n >= total, nil
}

// Count adds one to each of an import's counters given, in one round trip.
func (s *Store) Count(ctx context.Context, id string, stats ...string) error {
	var err error
	switch len(stats) {
	case 0:
		return nil
	case 1:
		err = s.rdb.HIncrBy(ctx, keysOf(id).stats, stats[0], 1).Err()
	default:
		pipe := s.rdb.Pipeline()
		for _, stat := range stats {
			pipe.HIncrBy(ctx, keysOf(id).stats, stat, 1)
		}
		_, err = pipe.Exec(ctx)
	}
	if err != nil {
		return fmt.Errorf("error counting %v of import %s: %w", stats, id, err)
	}
	return nil
}

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

// Rows yields the rows of an import in input order, with their outcomes and
// original columns, reading Redis in batches.
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
			results, err := s.rdb.HMGet(ctx, k.results, fields...).Result()
			if err != nil {
				yield(importer.ReportRow{}, fmt.Errorf("error reading rows %d-%d of import %s: %w", first, last, id, err))
				return
			}
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
				if !yield(row, nil) {
					return
				}
			}
		}
	}
}
