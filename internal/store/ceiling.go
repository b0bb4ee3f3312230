package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Per-integration ceilings: a sorted set per integration holds the writes
// in flight there (sent, not resolved), each "import|row" scored by the
// write's deadline, after which its row ends timed out and its place is
// taken back even if no resolve ever came (a worker that died for good). A
// hash in the import's slot remembers each admitted row's integration, so
// the resolve that records the row's outcome names the place to release in
// the same step (see Resolution.Ceiling).

func inFlightKey(integrationID string) string { return "importer:inflight:{" + integrationID + "}" }

// admitScript takes a place among an integration's writes in flight.
//
// Input:
// KEYS[1] -> importer:inflight:{<integration>}
// ARGV[1] -> the write: <import>|<row>
// ARGV[2] -> the most writes in flight
// ARGV[3] -> now, unix ms
// ARGV[4] -> the write's deadline, unix ms
//
// Output:
// 1 (admitted, or already in), or 0 (every place is taken).
var admitScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or tonumber(ARGV[3]) + ttl < tonumber(ARGV[4]) then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
return 1
`)

// Admit takes one of an integration's limit places for a row's write, or
// reports that all are taken. A row admitted before keeps its place.
func (s *Store) Admit(ctx context.Context, integrationID, id string, row, limit int, deadline time.Time) (bool, error) {
	ok, err := admitScript.Run(ctx, s.rdb, []string{inFlightKey(integrationID)}, id+"|"+strconv.Itoa(row), limit,
		time.Now().UnixMilli(), deadline.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("error counting the writes in flight in integration %s: %w", integrationID, err)
	}
	if ok == 0 {
		return false, nil
	}
	if err := s.rdb.HSet(ctx, keysOf(id).ceiling, row, integrationID).Err(); err != nil {
		return false, fmt.Errorf("error counting the writes in flight in integration %s: %w", integrationID, err)
	}
	return true, nil
}

// Release gives back a row's place among its integration's writes in
// flight, if it took one: for a write known not to have left. (A row that
// resolves has its place named by Resolve; see ReleasePlace.)
func (s *Store) Release(ctx context.Context, id string, row int) error {
	k := keysOf(id)
	field := strconv.Itoa(row)
	integrationID, err := s.rdb.HGet(ctx, k.ceiling, field).Result()
	if err == redis.Nil {
		return nil
	}
	if err == nil {
		err = s.rdb.HDel(ctx, k.ceiling, field).Err()
	}
	if err == nil {
		return s.ReleasePlace(ctx, integrationID, id, row)
	}
	return fmt.Errorf("error releasing row %d of import %s from its integration's writes in flight: %w", row, id, err)
}

// ReleasePlace gives back a row's place among an integration's writes in
// flight.
func (s *Store) ReleasePlace(ctx context.Context, integrationID, id string, row int) error {
	if err := s.rdb.ZRem(ctx, inFlightKey(integrationID), id+"|"+strconv.Itoa(row)).Err(); err != nil {
		return fmt.Errorf("error releasing row %d of import %s from its integration's writes in flight: %w", row, id, err)
	}
	return nil
}

// InFlight counts an integration's writes in flight (as Admit counts
// them).
func (s *Store) InFlight(ctx context.Context, integrationID string) (int, error) {
	key := inFlightKey(integrationID)
	pipe := s.rdb.Pipeline()
	pipe.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(time.Now().UnixMilli(), 10))
	n := pipe.ZCard(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("error counting the writes in flight in integration %s: %w", integrationID, err)
	}
	return int(n.Val()), nil
}
