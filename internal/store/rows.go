package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// RowState returns one row's state, in one round trip.
func (s *Store) RowState(ctx context.Context, id string, row int) (importer.RowState, error) {
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
			return importer.RowState{}, fmt.Errorf("error reading row %d of import %s: %w", row, id, err)
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
func (s *Store) RowStates(ctx context.Context, id string, rows []int) ([]importer.RowState, error) {
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
	out := make([]importer.RowState, len(rows))
	for i := range rows {
		if v, ok := states.Val()[i].(string); ok {
			out[i] = parseState(v)
		}
		out[i].Resolved = results.Val()[i] != nil
	}
	return out, nil
}

func parseState(v string) importer.RowState {
	switch {
	case strings.HasPrefix(v, stateSending):
		sending, retryOf, _ := strings.Cut(v[len(stateSending):], "|"+retryPrefix)
		n, _ := strconv.Atoi(strings.TrimPrefix(sending, ":"))
		return importer.RowState{Sending: true, Lookups: n, RetryOf: retryOf}
	case strings.HasPrefix(v, retryPrefix):
		return importer.RowState{RetryOf: v[len(retryPrefix):]}
	case v == stateLookUp:
		return importer.RowState{LookFirst: true}
	case strings.HasPrefix(v, jobPrefix):
		n, job, _ := strings.Cut(v[len(jobPrefix):], ":")
		check, _ := strconv.Atoi(n)
		return importer.RowState{JobID: job, Check: check}
	case v == stateQueued:
		return importer.RowState{Queued: true}
	}
	return importer.RowState{}
}

// jobIndexTTL is how long a job id leads back to its row, for webhooks.
const jobIndexTTL = 8 * 24 * time.Hour

func jobKey(jobID string) string      { return "importer:job:" + jobID }
func jobEventKey(jobID string) string { return "importer:jobevent:" + jobID }
func recordJobKey(key string) string  { return "importer:recordjob:" + key }

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

// JobOfRecord finds the last create job that wrote the record a key names
// (see Move, which indexes it), with its import and row.
func (s *Store) JobOfRecord(ctx context.Context, recordKey string) (importID string, row int, jobID string, ok bool, err error) {
	v, err := s.rdb.Get(ctx, recordJobKey(recordKey)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, "", false, nil
	}
	if err != nil {
		return "", 0, "", false, fmt.Errorf("error finding the write of a record: %w", err)
	}
	parts := strings.SplitN(v, "|", 3)
	if len(parts) == 3 {
		if row, err = strconv.Atoi(parts[1]); err == nil {
			return parts[0], row, parts[2], true, nil
		}
	}
	return "", 0, "", false, fmt.Errorf("a record's write: bad index %q", v)
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
// flight again.
//
// Input:
// KEYS[1] -> imp:{<id>}:results
// KEYS[2] -> imp:{<id>}:counts
// KEYS[3] -> imp:{<id>}:state
// KEYS[4] -> imp:{<id>}:meta
// ARGV[1] -> row
// ARGV[2] -> the outcome to take back
// ARGV[3] -> the job id of that outcome, or ""
// ARGV[4] -> the row's new state (q, r, w:<job> or j:1:<job>)
//
// Output:
// 1 when it took the outcome back, 0 when the row's outcome is another.
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

// planState is the row state that carries out a retry plan: the phase the
// lifecycle's table moves a resolved row to on the plan's reopen event.
func planState(p importer.RetryPlan) string {
	t, _ := importer.Next(importer.PhaseResolved, importer.ReopenEvent(p.Action))
	return encodeState(importer.Move{To: t.To, Job: p.Result.JobID})
}

// replaceScript swaps a row's outcome for another, counting the change, and
// reopens a finished import. The new result's empty fields keep their old
// values (a record id learned earlier stays); a new result of another write
// job than the old one's changes nothing (news of an older job is stale).
//
// Input:
// KEYS[1] -> imp:{<id>}:results
// KEYS[2] -> imp:{<id>}:counts
// KEYS[3] -> imp:{<id>}:meta
// KEYS[4] -> imp:{<id>}:input
// ARGV[1] -> row
// ARGV[2] -> the new outcome
// ARGV[3] -> the new result, JSON
// ARGV[4] -> the outcome it replaces
//
// Output:
// 0 (no change), 1 (changed) or 2 (changed, and the finished import
// reopened).
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

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// Tally adds one to each of an import's counters given (a counter given
// twice, two), in one round trip, and returns their new values in order.
func (s *Store) Tally(ctx context.Context, id string, stats ...string) ([]int, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(stats))
	for i, stat := range stats {
		cmds[i] = pipe.HIncrBy(ctx, keysOf(id).stats, stat, 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("error counting %v of import %s: %w", stats, id, err)
	}
	out := make([]int, len(stats))
	for i, c := range cmds {
		out[i] = int(c.Val())
	}
	return out, nil
}

// Count is Tally without the new values.
func (s *Store) Count(ctx context.Context, id string, stats ...string) error {
	if len(stats) == 0 {
		return nil
	}
	_, err := s.Tally(ctx, id, stats...)
	return err
}
