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
