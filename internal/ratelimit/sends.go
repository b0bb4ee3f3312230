package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Until the first new window is seen, where the current one ends is not
// known, and the clock's boundary is only a guess: late by up to a Period
// when the API's windows start elsewhere. The requests every worker took
// place it better. A window that counted consumed requests up to one sent
// at sent started no earlier than the consumed-th latest request taken by
// then: when no one else spends the budget it started right there, and
// ends a Period later. When more than a few fewer than consumed were taken
// in the Period before, someone else spends the budget too, and nothing is
// placed.

// sendLog is when the requests of every worker on a Redis were taken, for
// the last two Periods, in a sorted set: kept only while the windows'
// phase is not known.
type sendLog struct {
	rdb    redis.UniversalClient
	key    string
	period time.Duration
	id     string // this process's, to tell its members from others'
	n      atomic.Uint64
}

func newSendLog(rdb redis.UniversalClient, key string, period time.Duration) *sendLog {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return &sendLog{rdb: rdb, key: key, period: period, id: hex.EncodeToString(b)}
}

// add records n requests taken at t. A failure is not the request's: the
// log is a help to place a window, and a request missing from it makes a
// pause more likely, never a 429.
func (s *sendLog) add(ctx context.Context, t time.Time, n int) {
	at := t.UnixMilli()
	members := make([]redis.Z, n)
	for i := range members {
		members[i] = redis.Z{Score: float64(at), Member: s.id + ":" + strconv.FormatUint(s.n.Add(1), 36)}
	}
	pipe := s.rdb.Pipeline()
	pipe.ZAdd(ctx, s.key, members...)
	pipe.ZRemRangeByScore(ctx, s.key, "-inf", "("+strconv.FormatInt(t.Add(-2*s.period).UnixMilli(), 10))
	pipe.PExpire(ctx, s.key, 2*s.period)
	_, _ = pipe.Exec(ctx)
}

// windowEnd is where the window that counted consumed requests, the last
// of them sent at sent, ends if no one else spends the budget: a Period
// after the consumed-th latest request taken by sent. Up to slack of the
// consumed may be missing from the log (a request taken a moment after
// another but reaching the API before it; one sent without the limiter,
// as 'importer run --integration-id' looks the vendor up): the window
// then started no earlier than the first request taken in the Period
// before sent. ok is false when more are missing (someone else spends the
// budget) or Redis cannot tell.
func (s *sendLog) windowEnd(ctx context.Context, consumed, slack int, sent time.Time) (end time.Time, ok bool) {
	if consumed <= 0 {
		return time.Time{}, false
	}
	in := &redis.ZRangeBy{
		Max: strconv.FormatInt(sent.UnixMilli(), 10),
		Min: "(" + strconv.FormatInt(sent.Add(-s.period).UnixMilli(), 10),
	}
	pipe := s.rdb.Pipeline()
	taken := pipe.ZCount(ctx, s.key, in.Min, in.Max)
	nth := pipe.ZRevRangeByScoreWithScores(ctx, s.key, &redis.ZRangeBy{Max: in.Max, Min: in.Min, Offset: int64(consumed - 1), Count: 1})
	first := pipe.ZRangeByScoreWithScores(ctx, s.key, &redis.ZRangeBy{Max: in.Max, Min: in.Min, Count: 1})
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, false
	}
	var from []redis.Z
	switch n := int(taken.Val()); {
	case n >= consumed:
		from = nth.Val()
	case n > 0 && n >= consumed-slack:
		from = first.Val()
	}
	if len(from) == 0 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(from[0].Score)).Add(s.period), true
}
