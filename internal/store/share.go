package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The imports feeding rows share the API budget by weight. Each feed says
// it is active (with its weight) every time it runs, and reads the weights
// of the others: an import whose feed has not run for activeFor has ended or
// stopped, and no longer counts.
//
//	importer:active   hash: import id -> "weight:last seen, unix ms"

const activeKey = "importer:active"

// activeFor is how long an import counts as active after its feed last ran
// (it runs every few seconds while it has rows to queue).
const activeFor = 15 * time.Second

// activateScript records an import as active and sums the weights of every
// active import, dropping those not seen for a while.
//
// Input:
// KEYS[1] -> importer:active
// ARGV[1] -> the import's id
// ARGV[2] -> its weight
// ARGV[3] -> now, unix ms
// ARGV[4] -> how long an import counts as active, ms
//
// Output:
// the sum of the active imports' weights, this one's included.
var activateScript = redis.NewScript(`
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  local w, seen = string.match(all[i + 1], '^(%d+):(%d+)$')
  if w and now - tonumber(seen) <= tonumber(ARGV[4]) then
    total = total + tonumber(w)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return total
`)

// Activate records that an import is feeding rows, with its weight, and
// returns the weights of all the imports feeding rows now, its own
// included.
func (s *Store) Activate(ctx context.Context, id string, weight int, now time.Time) (int, error) {
	total, err := activateScript.Run(ctx, s.rdb, []string{activeKey}, id, weight, now.UnixMilli(), activeFor.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("error sharing the budget with the other imports: %w", err)
	}
	return total, nil
}

// Deactivate records that an import feeds no more rows: its share goes to
// the others at once.
func (s *Store) Deactivate(ctx context.Context, id string) error {
	if err := s.rdb.HDel(ctx, activeKey, id).Err(); err != nil {
		return fmt.Errorf("error leaving the budget to the other imports: %w", err)
	}
	return nil
}

// queuedScript counts an import's rows queued and not sent yet: waiting for
// their submit to run (queued, to be looked up first, to be retried through
// retry-write). The state hash holds only the rows in flight.
//
// Input:
// KEYS[1] -> imp:{<id>}:state
//
// Output:
// the number of such rows.
var queuedScript = redis.NewScript(`
local n = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  if v == '` + stateQueued + `' or v == '` + stateLookUp + `' or string.sub(v, 1, 2) == '` + retryPrefix + `' then n = n + 1 end
end
return n
`)

// Queued returns how many of an import's rows are queued and not sent yet.
func (s *Store) Queued(ctx context.Context, id string) (int, error) {
	n, err := queuedScript.Run(ctx, s.rdb, []string{keysOf(id).state}).Int()
	if err != nil {
		return 0, fmt.Errorf("error counting the queued rows of import %s: %w", id, err)
	}
	return n, nil
}

// Turns: the imports sending creates take turns by weight. Each keeps a
// virtual time that grows by 1/weight with every create it sends; an
// import whose virtual time is ahead of the slowest sending import's by
// more than a slack waits a moment, so the limiter's tokens go to the
// imports behind. An import counts as sending while it sent within
// turnFresh: one that stops (its rows are done, or wait on its window or
// a ceiling) holds nobody back for longer than that, and one that starts
// (or starts again) comes in at the slowest one's time, with no backlog of
// turns to claim.
//
//	importer:turns   hash: import id -> "virtual time:last send, unix ms"

const turnsKey = "importer:turns"

// turnFresh is how long after its last send an import counts as sending.
const turnFresh = 2 * time.Second

// turnScript tells whether an import may send a create now, or counts one
// it sent.
//
// Input:
// KEYS[1] -> importer:turns
// ARGV[1] -> the import's id
// ARGV[2] -> its weight
// ARGV[3] -> now, unix ms
// ARGV[4] -> how long after its last send an import counts as sending, ms
// ARGV[5] -> the slack: how far ahead of the slowest an import may be
// ARGV[6] -> "ask" (may it send?) or "sent" (count a create it sent)
//
// Output:
// 1 (its turn, or counted), or 0 (wait).
var turnScript = redis.NewScript(`
local now = tonumber(ARGV[3])
local fresh = tonumber(ARGV[4])
local all = redis.call('HGETALL', KEYS[1])
local min, mine
for i = 1, #all, 2 do
  local v, last = string.match(all[i + 1], '^([^:]+):(%d+)$')
  v, last = tonumber(v), tonumber(last)
  if not v or now - last > 60 * fresh then
    redis.call('HDEL', KEYS[1], all[i])
  elseif now - last <= fresh then
    if all[i] == ARGV[1] then mine = v end
    if not min or v < min then min = v end
  end
end
min = min or 0
if not mine or mine < min then mine = min end
if ARGV[6] == 'ask' then
  if mine > min + tonumber(ARGV[5]) then return 0 end
  return 1
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.6f', mine + 1 / tonumber(ARGV[2])) .. ':' .. now)
return 1
`)

// Turn tells whether an import of the given weight may send a create now
// beside the other imports sending (see turnsKey): not while it is more
// than slack ahead of the slowest of them.
func (s *Store) Turn(ctx context.Context, id string, weight int, slack float64, now time.Time) (bool, error) {
	return s.turn(ctx, id, weight, slack, now, "ask")
}

// Sent counts a create an import sent, for the turns.
func (s *Store) Sent(ctx context.Context, id string, weight int, now time.Time) error {
	_, err := s.turn(ctx, id, weight, 0, now, "sent")
	return err
}

func (s *Store) turn(ctx context.Context, id string, weight int, slack float64, now time.Time, mode string) (bool, error) {
	ok, err := turnScript.Run(ctx, s.rdb, []string{turnsKey}, id, max(weight, 1), now.UnixMilli(), turnFresh.Milliseconds(), slack, mode).Int()
	if err != nil {
		return false, fmt.Errorf("error taking turns among the imports: %w", err)
	}
	return ok == 1, nil
}
