package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// moveScript is a row's one transition (importer.Move): a compare-and-set
// of the row's phase, read from its state and its outcome exactly as
// parseState and RowState.Phase read them. Moving to resolved records the
// outcome once and counts it, as the feed's window needs: a row that was
// in flight (it had a state) counts as landed, which makes room; when the
// feed waits for room (feed_wait) and there is enough (in flight at most
// feed_wake), this move takes the wait away and returns it, for its caller
// to wake the feed.
//
// Input:
// KEYS[1] -> imp:{<id>}:meta
// KEYS[2] -> imp:{<id>}:state
// KEYS[3] -> imp:{<id>}:results
// KEYS[4] -> imp:{<id>}:counts
// KEYS[5] -> imp:{<id>}:stats
// KEYS[6] -> imp:{<id>}:ceiling
// ARGV[1] -> row
// ARGV[2] -> the phases the row must be in, space-separated ("": any but
// resolved)
// ARGV[3] -> the job the row must follow or retry, or ""
// ARGV[4] -> the status check the row must be at, or "0"
// ARGV[5] -> the phase it moves to
// ARGV[6] -> its state there (see the encodings in store.go; "": none)
// ARGV[7] -> the outcome, moving to resolved
// ARGV[8] -> the result, JSON, moving to resolved
// ARGV[9...] -> counters to add one to
//
// Output:
// {flags, wait, ceiling, was}: flags 1 when it moved, 2 when every row of
// the import has its outcome, 8 alone when the import is gone, 16 when a
// move to sending met a cancelled import (news of another job than the row
// follows is stale: Move tells it from was); wait is "gen:seq" of the feed
// task to wake, or ""; ceiling is the integration whose writes in flight
// the resolved row's write was counted among, or ""; was is the phase the
// row was in.
var moveScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'import') == 0 then return {8, '', '', ''} end
for i = 9, #ARGV do redis.call('HINCRBY', KEYS[5], ARGV[i], 1) end
local row = ARGV[1]
local st = redis.call('HGET', KEYS[2], row)
local was = 'unfed'
local job, check = '', ''
if redis.call('HEXISTS', KEYS[3], row) == 1 then
  was = 'resolved'
elseif st then
  if string.sub(st, 1, 1) == 's' then
    local retry = string.match(st, '|w:(.*)$')
    if retry then was, job = 'sending_retry', retry else was = 'sending' end
  elseif string.sub(st, 1, 2) == 'w:' then
    was, job = 'retry_queued', string.sub(st, 3)
  elseif string.sub(st, 1, 2) == 'j:' then
    check, job = string.match(st, '^j:(%d+):(.*)$')
    if check == '0' then was = 'parked' else was = 'following' end
  elseif st == 'r' then
    was = 'look_first'
  elseif st == 'q' then
    was = 'queued'
  end
end
local function done(flags)
  local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '-1')
  local resolved = tonumber(redis.call('HGET', KEYS[4], 'resolved') or '0')
  if total >= 0 and resolved >= total then return flags + 2 end
  return flags
end
if was == 'resolved' then return {done(0), '', '', was} end
if ARGV[2] ~= '' and not string.find(' ' .. ARGV[2] .. ' ', ' ' .. was .. ' ', 1, true) then return {0, '', '', was} end
if ARGV[3] ~= '' and job ~= ARGV[3] then return {0, '', '', was} end
if ARGV[4] ~= '0' and check ~= ARGV[4] then return {0, '', '', was} end
local to = ARGV[5]
if (to == 'sending' or to == 'sending_retry') and redis.call('HEXISTS', KEYS[1], 'cancelled_at') == 1 then return {16, '', '', was} end
if to ~= 'resolved' then
  if ARGV[6] == '' then redis.call('HDEL', KEYS[2], row) else redis.call('HSET', KEYS[2], row, ARGV[6]) end
  return {1, '', '', was}
end
local wake, ceiling = '', ''
redis.call('HSET', KEYS[3], row, ARGV[8])
redis.call('HINCRBY', KEYS[4], ARGV[7], 1)
redis.call('HINCRBY', KEYS[4], 'resolved', 1)
if redis.call('HDEL', KEYS[2], row) == 1 then
  local landed = redis.call('HINCRBY', KEYS[1], 'landed', 1)
  local wait = redis.call('HGET', KEYS[1], 'feed_wait')
  if wait then
    local fed = tonumber(redis.call('HGET', KEYS[1], 'fed') or '0')
    if fed - landed <= tonumber(redis.call('HGET', KEYS[1], 'feed_wake') or '0') then
      redis.call('HDEL', KEYS[1], 'feed_wait')
      wake = wait
    end
  end
end
local integration = redis.call('HGET', KEYS[6], row)
if integration then
  redis.call('HDEL', KEYS[6], row)
  ceiling = integration
end
return {done(1), wake, ceiling, was}
`)

// Move carries out one transition of a row (see importer.Move), as one
// compare-and-set. A move to sending (and a move that stores the job a
// create was answered with) is waited for until a replica of Redis has it,
// where Redis has replicas: lost in a failover after the write left, the
// row would look unsent and be sent twice. A mark to send that no replica
// confirms is taken back, and the move fails with importer.ErrNotReplicated:
// nothing may be sent on it. A job id no replica confirms stays on the
// primary: a failover that loses it leaves the row sending, to be looked
// up. A move of an import gone fails with importer.ErrImportNotFound.
func (s *Store) Move(ctx context.Context, id string, m importer.Move) (importer.Moved, error) {
	k := keysOf(id)
	args, err := moveArgs(m)
	if err != nil {
		return importer.Moved{}, err
	}
	keys := k.moveKeys()
	var cmd *redis.Cmd
	var durable error
	switch m.To {
	case importer.PhaseSending, importer.PhaseSendingRetry, importer.PhaseFollowing:
		_, cluster := s.rdb.(*redis.ClusterClient)
		if cluster {
			// The indexes live outside the import's slot, on other
			// nodes: written apart, first.
			pipe := s.rdb.Pipeline()
			indexes := s.indexJob(ctx, pipe, id, m)
			_, _ = pipe.Exec(ctx) // errors are read per command
			if err := firstErr(indexes); err != nil {
				return importer.Moved{}, fmt.Errorf("error indexing the job of row %d of import %s: %w", m.Row, id, err)
			}
		}
		var indexes []*redis.StatusCmd
		durable = s.replicated(ctx, k.state, func(pipe redis.Pipeliner) {
			if !cluster {
				indexes = s.indexJob(ctx, pipe, id, m)
			}
			cmd = moveScript.Eval(ctx, pipe, keys, args...)
		})
		if cmd == nil { // the primary holding the row could not be reached
			return importer.Moved{}, fmt.Errorf("error moving row %d of import %s to %s: %w", m.Row, id, m.To, durable)
		}
		if err := firstErr(indexes); err != nil {
			return importer.Moved{}, fmt.Errorf("error indexing the job of row %d of import %s: %w", m.Row, id, err)
		}
	default:
		cmd = moveScript.Run(ctx, s.rdb, keys, args...)
	}
	moved, err := readMoved(cmd)
	if err != nil {
		return moved, fmt.Errorf("row %d of import %s: %w", m.Row, id, err)
	}
	moved.Recorded = moved.Moved && m.To == importer.PhaseResolved
	// News of a job (or for a retry-write) that finds the row in flight
	// with anything else is stale.
	moved.Stale = m.FromJob != "" && !moved.Moved && moved.Was != importer.PhaseResolved
	if !moved.Moved || durable == nil || moved.Was == m.To {
		return moved, nil // a row that stays sending was marked before
	}
	if m.To == importer.PhaseFollowing && errors.Is(durable, importer.ErrNotReplicated) {
		// The primary has the job id: a failover that loses it leaves the
		// row sending, to be looked up.
		return moved, nil
	}
	if errors.Is(durable, importer.ErrNotReplicated) {
		// Nothing is sent on a mark a failover could lose.
		back := importer.Move{Row: m.Row, From: []importer.Phase{m.To}, To: moved.Was, Job: m.Job}
		if _, err := s.Move(ctx, id, back); err != nil {
			return moved, err
		}
	}
	return moved, fmt.Errorf("error moving row %d of import %s to %s: %w", m.Row, id, m.To, durable)
}

// indexJob indexes a followed job for webhooks, in the same round trip as
// its move on one Redis (before it, on a cluster): the job leads to its
// row, and the record a create writes (importer.RecordKey) to its job, so
// that a DATA_NEW naming another job finds the write. The index costs a
// key or two per row for jobIndexTTL, so it is kept only where webhooks
// come.
func (s *Store) indexJob(ctx context.Context, pipe redis.Pipeliner, id string, m importer.Move) []*redis.StatusCmd {
	if m.To != importer.PhaseFollowing || !m.ForWebhooks {
		return nil
	}
	row := strconv.Itoa(m.Row)
	cmds := []*redis.StatusCmd{pipe.Set(ctx, jobKey(m.Job), id+"|"+row, jobIndexTTL)}
	if m.RecordKey != "" {
		cmds = append(cmds, pipe.Set(ctx, recordJobKey(m.RecordKey), id+"|"+row+"|"+m.Job, jobIndexTTL))
	}
	return cmds
}

func firstErr(cmds []*redis.StatusCmd) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// moveKeys are moveScript's keys, in its order.
func (k keys) moveKeys() []string {
	return []string{k.meta, k.state, k.results, k.counts, k.stats, k.ceiling}
}

func moveArgs(m importer.Move) ([]any, error) {
	from := make([]string, len(m.From))
	for i, p := range m.From {
		from[i] = string(p)
	}
	var outcome, result string
	if m.To == importer.PhaseResolved {
		if m.Result.Row != m.Row {
			return nil, fmt.Errorf("row %d: moving it to resolved with the result of row %d", m.Row, m.Result.Row)
		}
		b, err := encodeResult(m.Result)
		if err != nil {
			return nil, fmt.Errorf("error encoding the result of row %d: %w", m.Row, err)
		}
		outcome, result = string(m.Result.Outcome), string(b)
	}
	args := []any{m.Row, strings.Join(from, " "), m.FromJob, m.FromCheck, string(m.To), encodeState(m), outcome, result}
	for _, stat := range m.Stats {
		args = append(args, stat)
	}
	return args, nil
}

// encodeState is the state hash's encoding of the phase a move goes to
// (see the encodings in store.go): "" for none (unfed, resolved).
func encodeState(m importer.Move) string {
	switch m.To {
	case importer.PhaseQueued:
		return stateQueued
	case importer.PhaseLookFirst:
		return stateLookUp
	case importer.PhaseRetryQueued:
		return retryPrefix + m.Job
	case importer.PhaseSending, importer.PhaseSendingRetry:
		v := stateSending
		if m.Lookups > 0 {
			v += ":" + strconv.Itoa(m.Lookups)
		}
		if m.To == importer.PhaseSendingRetry {
			v += "|" + retryPrefix + m.Job
		}
		return v
	case importer.PhaseFollowing:
		return jobPrefix + strconv.Itoa(max(m.Check, 1)) + ":" + m.Job
	case importer.PhaseParked:
		return jobPrefix + "0:" + m.Job
	}
	return ""
}

func readMoved(cmd *redis.Cmd) (importer.Moved, error) {
	vals, err := cmd.Slice()
	if err != nil || len(vals) != 4 {
		return importer.Moved{}, fmt.Errorf("error moving the row: %w", errOr(err, "bad answer"))
	}
	flags, _ := vals[0].(int64)
	if flags == 8 {
		return importer.Moved{}, importer.ErrImportNotFound
	}
	was, _ := vals[3].(string)
	m := importer.Moved{Moved: flags&1 != 0, Was: importer.Phase(was), Cancelled: flags&16 != 0}
	m.Done = flags&2 != 0
	if wait, _ := vals[1].(string); wait != "" {
		gen, seq, _ := strings.Cut(wait, ":")
		m.WakeGen, _ = strconv.Atoi(gen)
		m.WakeSeq, _ = strconv.Atoi(seq)
	}
	m.Ceiling, _ = vals[2].(string)
	return m, nil
}
