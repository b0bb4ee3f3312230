package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// The feed moves a cursor over an import's stored rows and queues their
// submits a window at a time, so that a file of a million rows never puts a
// million tasks into Redis. Its state lives in the import's meta hash:
//
//	feed_gen     the generation: each split starts a new one, and a feed
//	             task of an older one stops
//	feed_cursor  the first row the feed has not looked at
//	fed          rows queued so far (each is given the state "q")
//	landed       rows among them that have an outcome (their state is gone)
//	feed_wait    "gen:seq" of the feed task waiting for room, if one is
//	feed_wake    the rows in flight at or under which it is woken
//
// fed − landed is the number of rows in flight.

// StartFeed starts a new generation of the import's feed, at row 1.
func (s *Store) StartFeed(ctx context.Context, id string) (int, error) {
	k := keysOf(id)
	pipe := s.rdb.TxPipeline()
	gen := pipe.HIncrBy(ctx, k.meta, "feed_gen", 1)
	pipe.HSet(ctx, k.meta, "feed_cursor", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("error starting the feed of import %s: %w", id, err)
	}
	return int(gen.Val()), nil
}

// Feed returns the state of the import's feed.
func (s *Store) Feed(ctx context.Context, id string) (importer.FeedState, error) {
	vals, err := s.rdb.HMGet(ctx, keysOf(id).meta, "feed_gen", "feed_cursor", "total", "fed", "landed", "stopped").Result()
	if err != nil {
		return importer.FeedState{}, fmt.Errorf("error reading the feed of import %s: %w", id, err)
	}
	n := func(v any) int {
		s, _ := v.(string)
		i, _ := strconv.Atoi(s)
		return i
	}
	return importer.FeedState{Gen: n(vals[0]), Cursor: n(vals[1]), Total: n(vals[2]), Fed: n(vals[3]), Landed: n(vals[4]), Stopped: vals[5] != nil}, nil
}

// feedScript marks the rows of [first, last] that have no outcome and no
// state as queued, while the window has room, and returns the next cursor
// followed by (row, state) pairs of every unresolved row it passed: those
// just marked, and those already in flight (a second feed queues their
// tasks again, which Asynq's task ids make harmless).
//
// Input:
// KEYS[1] -> imp:{<id>}:results
// KEYS[2] -> imp:{<id>}:state
// KEYS[3] -> imp:{<id>}:meta
// ARGV[1] -> the feed's generation
// ARGV[2] -> first row
// ARGV[3] -> last row
// ARGV[4] -> the window: most rows in flight
// ARGV[5] -> the quota: most rows newly queued by this call (-1: no quota)
//
// Output:
// {next cursor, rows newly queued, row, state, row, state, ...}, or {-1}
// when the generation is not the current one.
var feedScript = redis.NewScript(`
if tonumber(redis.call('HGET', KEYS[3], 'feed_gen') or '0') ~= tonumber(ARGV[1]) then return {-1} end
local fed = tonumber(redis.call('HGET', KEYS[3], 'fed') or '0')
local landed = tonumber(redis.call('HGET', KEYS[3], 'landed') or '0')
local room = tonumber(ARGV[4]) - (fed - landed)
local quota = tonumber(ARGV[5])
if quota >= 0 and quota < room then room = quota end
local last = tonumber(ARGV[3])
local out = {last + 1, 0}
for r = tonumber(ARGV[2]), last do
  if redis.call('HEXISTS', KEYS[1], r) == 0 then
    local st = redis.call('HGET', KEYS[2], r)
    if st then
      out[#out + 1] = r
      out[#out + 1] = st
    elseif room > 0 then
      redis.call('HSET', KEYS[2], r, 'q')
      room = room - 1
      fed = fed + 1
      out[2] = out[2] + 1
      out[#out + 1] = r
      out[#out + 1] = 'q'
    else
      out[1] = r
      break
    end
  end
end
redis.call('HSET', KEYS[3], 'fed', fed)
return out
`)

// FeedBatch passes the rows first..last of the import under the feed's
// window: it marks as queued the rows that have no outcome and are not in
// flight, while fewer than window rows are in flight and at most quota rows
// (-1: any number) are newly queued, and returns the cursor to go on from
// (last+1 when it passed every row), the rows to queue with their states,
// and how many of them it newly queued.
func (s *Store) FeedBatch(ctx context.Context, id string, gen, first, last, window, quota int) (next int, rows []int, states []importer.RowState, queued int, err error) {
	k := keysOf(id)
	vals, err := feedScript.Run(ctx, s.rdb, []string{k.results, k.state, k.meta}, gen, first, last, window, quota).Slice()
	if err != nil {
		return 0, nil, nil, 0, fmt.Errorf("error feeding rows %d-%d of import %s: %w", first, last, id, err)
	}
	next64, _ := vals[0].(int64)
	if next64 < 0 {
		return 0, nil, nil, 0, importer.ErrFeedSuperseded
	}
	queued64, _ := vals[1].(int64)
	for i := 2; i+1 < len(vals); i += 2 {
		r, _ := vals[i].(int64)
		st, _ := vals[i+1].(string)
		rows = append(rows, int(r))
		states = append(states, parseState(st))
	}
	return int(next64), rows, states, int(queued64), nil
}

// PauseFeed records that the feed's window is full and that feed task seq
// of generation gen waits for room: the resolve that brings the rows in
// flight down to wake wakes it (see Resolve).
func (s *Store) PauseFeed(ctx context.Context, id string, gen, seq, wake int) error {
	if err := s.rdb.HSet(ctx, keysOf(id).meta, "feed_wait", strconv.Itoa(gen)+":"+strconv.Itoa(seq), "feed_wake", wake).Err(); err != nil {
		return fmt.Errorf("error pausing the feed of import %s: %w", id, err)
	}
	return nil
}

// advanceCursorScript moves the cursor forward within its generation.
//
// Input:
// KEYS[1] -> imp:{<id>}:meta
// ARGV[1] -> the feed's generation
// ARGV[2] -> the new cursor
//
// Output:
// 1, or -1 when the generation is not the current one.
var advanceCursorScript = redis.NewScript(`
if tonumber(redis.call('HGET', KEYS[1], 'feed_gen') or '0') ~= tonumber(ARGV[1]) then return -1 end
if tonumber(redis.call('HGET', KEYS[1], 'feed_cursor') or '0') < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'feed_cursor', ARGV[2])
end
return 1
`)

// AdvanceCursor records that the feed queued every row before cursor. It
// is called only once their tasks are on the queue, so a feed that dies
// between the two goes over the same rows again.
func (s *Store) AdvanceCursor(ctx context.Context, id string, gen, cursor int) error {
	n, err := advanceCursorScript.Run(ctx, s.rdb, []string{keysOf(id).meta}, gen, cursor).Int()
	if err != nil {
		return fmt.Errorf("error moving the feed of import %s: %w", id, err)
	}
	if n < 0 {
		return importer.ErrFeedSuperseded
	}
	return nil
}
