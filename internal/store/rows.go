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

// setStateScript sets a row's state, only while the import exists: a
// worker that finds out late that Redis lost the import (its task was in
// flight) must not leave the row a state that a recovery of the import
// would take for its own.
//
// Input:
// KEYS[1] -> imp:{<id>}:meta
// KEYS[2] -> imp:{<id>}:state
// ARGV[1] -> row
// ARGV[2] -> state (see the encodings in store.go)
//
// Output:
// 1, or 0 when the import is gone.
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
// cannot both win), or the import is gone.
//
// Input:
// KEYS[1] -> imp:{<id>}:meta
// KEYS[2] -> imp:{<id>}:state
// KEYS[3] -> imp:{<id>}:results
// ARGV[1] -> row
// ARGV[2] -> the sending state: s, or s|w:<job> for a retry-write
//
// Output:
// 1 (marked), 0 (not to send), or -1 (the import is gone).
var markSendingScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'import') == 0 then return -1 end
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 or redis.call('HEXISTS', KEYS[1], 'cancelled_at') == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`)

// MarkSending records that a create (or, with retryOf, the retry-write of
// that failed job) is about to be sent for the row, unless the row has its
// outcome or the import was cancelled (importer.ErrNotToSend) or is gone.
// When Redis has replicas, it returns only once one of them has the mark;
// if none confirms it in time, the row is left to be sent
// (importer.ErrNotReplicated).
func (s *Store) MarkSending(ctx context.Context, id string, row int, retryOf string) error {
	v := stateSending
	if retryOf != "" {
		v += "|" + retryPrefix + retryOf
	}
	k := keysOf(id)
	var mark *redis.Cmd
	durable := s.replicated(ctx, k.state, func(pipe redis.Pipeliner) {
		mark = markSendingScript.Eval(ctx, pipe, []string{k.meta, k.state, k.results}, row, v)
	})
	if mark == nil { // the primary holding the row could not be reached
		return fmt.Errorf("error saving row %d of import %s: %w", row, id, durable)
	}
	n, err := mark.Int()
	switch {
	case err != nil:
		return fmt.Errorf("error saving row %d of import %s: %w", row, id, err)
	case n == 0:
		return fmt.Errorf("row %d of import %s: %w", row, id, importer.ErrNotToSend)
	case n < 0:
		return fmt.Errorf("row %d of import %s: %w", row, id, importer.ErrImportNotFound)
	case durable != nil:
		// Nothing is sent on a mark a failover could lose.
		if err := s.Unsend(ctx, id, row, retryOf); err != nil {
			return err
		}
		return fmt.Errorf("row %d of import %s: %w", row, id, durable)
	}
	return nil
}

// jobIndexTTL is how long a job id leads back to its row, for webhooks.
const jobIndexTTL = 8 * 24 * time.Hour

func jobKey(jobID string) string      { return "importer:job:" + jobID }
func jobEventKey(jobID string) string { return "importer:jobevent:" + jobID }
func recordJobKey(key string) string  { return "importer:recordjob:" + key }

// SetJob records the write's job id, with status check number 1, and, for
// webhooks, indexes the job so a webhook finds its row, and the record a
// create writes (recordKey, see importer.RecordKey) so that a DATA_NEW
// naming another job finds the write. The index costs a key or two per row
// for jobIndexTTL, so it is kept only where webhooks come.
func (s *Store) SetJob(ctx context.Context, id string, row int, jobID string, forWebhooks bool, recordKey string, stats ...string) error {
	k := keysOf(id)
	var indexes []*redis.StatusCmd
	index := func(pipe redis.Pipeliner) {
		if !forWebhooks {
			return
		}
		indexes = append(indexes, pipe.Set(ctx, jobKey(jobID), id+"|"+strconv.Itoa(row), jobIndexTTL))
		if recordKey != "" {
			indexes = append(indexes, pipe.Set(ctx, recordJobKey(recordKey), id+"|"+strconv.Itoa(row)+"|"+jobID, jobIndexTTL))
		}
	}
	_, cluster := s.rdb.(*redis.ClusterClient)
	if cluster {
		// The indexes live outside the import's slot, on other nodes:
		// written apart.
		pipe := s.rdb.Pipeline()
		index(pipe)
		_, _ = pipe.Exec(ctx) // errors are read per command, below
	}
	// The job id, the request's count (and, on one Redis, the indexes) in
	// one round trip, waited for until a replica has it: a row that lost
	// its job id in a failover is looked up, which costs requests and, for
	// a PMS that shows new residents late, ends it in doubt.
	var set *redis.Cmd
	durable := s.replicated(ctx, k.state, func(pipe redis.Pipeliner) {
		if !cluster {
			index(pipe)
		}
		set = setStateScript.Eval(ctx, pipe, []string{k.meta, k.state}, row, jobPrefix+"1:"+jobID)
		for _, stat := range stats {
			pipe.HIncrBy(ctx, k.stats, stat, 1)
		}
	})
	for _, cmd := range indexes {
		if err := cmd.Err(); err != nil {
			return fmt.Errorf("error indexing the job of row %d of import %s: %w", row, id, err)
		}
	}
	if set == nil { // the primary holding the row could not be reached
		return fmt.Errorf("error saving the job of row %d of import %s: %w", row, id, durable)
	}
	if n, err := set.Int(); err != nil {
		return fmt.Errorf("error saving the job of row %d of import %s: %w", row, id, err)
	} else if n == 0 {
		return fmt.Errorf("row %d of import %s: %w", row, id, importer.ErrImportNotFound)
	}
	if durable != nil && !errors.Is(durable, importer.ErrNotReplicated) {
		return fmt.Errorf("error saving the job of row %d of import %s: %w", row, id, durable)
	}
	// Not confirmed by a replica in time: the primary has it, and a
	// failover that loses it leaves the row "sending", to be looked up.
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

// JobOfRecord finds the last create job that wrote the record a key names
// (see SetJob), with its import and row.
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
	return encodePhase(t.To, p.Result.JobID)
}

// encodePhase is the state hash's encoding of a row put in a phase with
// nothing sent (see the encodings in store.go): the phases a retry takes a
// row back to.
func encodePhase(phase importer.Phase, jobID string) string {
	switch phase {
	case importer.PhaseRetryQueued:
		return retryPrefix + jobID
	case importer.PhaseParked:
		return jobPrefix + "0:" + jobID
	case importer.PhaseLookFirst:
		return stateLookUp
	}
	return stateQueued
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

// advanceScript moves a followed row's status check number from one to the
// next, while the import exists and the row still is at the first.
//
// Input:
// KEYS[1] -> imp:{<id>}:state
// KEYS[2] -> imp:{<id>}:meta
// ARGV[1] -> row
// ARGV[2] -> the check number it must be at
// ARGV[3] -> the check number it moves to
//
// Output:
// 1 when it moved, else 0.
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
//
// Input:
// KEYS[1] -> imp:{<id>}:results
// KEYS[2] -> imp:{<id>}:counts
// KEYS[3] -> imp:{<id>}:meta
// KEYS[4] -> imp:{<id>}:state
// KEYS[5] -> imp:{<id>}:ceiling
// ARGV[1] -> row
// ARGV[2] -> outcome
// ARGV[3] -> the result, JSON
// ARGV[4] -> the job id the news is of, or "" (not news of a job)
// ARGV[5] -> "unsent": record it only if the row is neither being sent nor
// followed (a cancel); else ""
//
// Output:
// {flags, wait, ceiling}: flags 2 when it recorded the outcome, plus 1 when
// the import is done; or 4 alone when the news was stale, 8 alone when the
// import is gone, 16 alone when the row was in flight ("unsent"); wait is
// "gen:seq" of the feed task to wake, or ""; ceiling is the integration
// whose writes in flight the row's write was counted among, or "".
var resolveScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[3], 'import') == 0 then return {8, '', ''} end
local recorded = 0
local wake = ''
local ceiling = ''
if ARGV[4] ~= '' then
  local st = redis.call('HGET', KEYS[4], ARGV[1])
  if st and string.match(st, '^j:%d+:(.*)$') ~= ARGV[4] then return {4, '', ''} end
end
if ARGV[5] == 'unsent' then
  local st = redis.call('HGET', KEYS[4], ARGV[1])
  if st and (string.sub(st, 1, 1) == 's' or string.sub(st, 1, 2) == 'j:') then return {16, '', ''} end
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
  local integration = redis.call('HGET', KEYS[5], ARGV[1])
  if integration then
    redis.call('HDEL', KEYS[5], ARGV[1])
    ceiling = integration
  end
end
local total = tonumber(redis.call('HGET', KEYS[3], 'total') or '-1')
local resolved = tonumber(redis.call('HGET', KEYS[2], 'resolved') or '0')
if total >= 0 and resolved >= total then recorded = recorded + 1 end
return {recorded, wake, ceiling}
`)

// Resolve records a row's outcome and counts it, once per row.
func (s *Store) Resolve(ctx context.Context, id string, r importer.RowResult, stats ...string) (importer.Resolution, error) {
	return s.resolve(ctx, id, r, "", "", stats...)
}

// ResolveJob records the outcome of the row's write job r.JobID, as
// Resolve does, unless the row no longer follows that job: then the news is
// stale, and nothing is recorded.
func (s *Store) ResolveJob(ctx context.Context, id string, r importer.RowResult, stats ...string) (importer.Resolution, error) {
	return s.resolve(ctx, id, r, r.JobID, "", stats...)
}

// CancelUnsent records the outcome of a row a cancel kept from being sent,
// as Resolve does, unless the row is being sent or followed.
func (s *Store) CancelUnsent(ctx context.Context, id string, r importer.RowResult) (importer.Resolution, error) {
	return s.resolve(ctx, id, r, "", "unsent")
}

func (s *Store) resolve(ctx context.Context, id string, r importer.RowResult, ofJob, only string, stats ...string) (importer.Resolution, error) {
	k := keysOf(id)
	b, err := encodeResult(r)
	if err != nil {
		return importer.Resolution{}, fmt.Errorf("error encoding the result of row %d: %w", r.Row, err)
	}
	keys := []string{k.results, k.counts, k.meta, k.state, k.ceiling}
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
	if err != nil || len(vals) != 3 {
		return importer.Resolution{}, fmt.Errorf("error recording the outcome of row %d of import %s: %w", r.Row, id, errOr(err, "bad answer"))
	}
	n, _ := vals[0].(int64)
	if n == 8 {
		return importer.Resolution{}, fmt.Errorf("row %d of import %s: %w", r.Row, id, importer.ErrImportNotFound)
	}
	if n == 16 {
		return importer.Resolution{}, nil // in flight: not recorded
	}
	res := importer.Resolution{Recorded: n&2 != 0, Done: n&1 != 0, Stale: n == 4}
	if wait, _ := vals[1].(string); wait != "" {
		gen, seq, _ := strings.Cut(wait, ":")
		res.WakeGen, _ = strconv.Atoi(gen)
		res.WakeSeq, _ = strconv.Atoi(seq)
	}
	res.Ceiling, _ = vals[2].(string)
	return res, nil
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
