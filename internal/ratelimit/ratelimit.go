// Package ratelimit shares the write API's rate limit between every worker
// through Redis: a GCRA token bucket (go-redis/redis_rate) paced so that no
// fixed window of the API's sees more than the limit, and a shared pause that
// stops everyone when the API says the window is spent (a 429, or
// x-ratelimit-remaining at 0).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Config sizes a Limiter. The zero value of each field is its default.
type Config struct {
	// Limit is how many requests the API allows per Period, for every
	// worker together. Default 150.
	Limit int
	// Period is the API's window. Default one minute.
	Period time.Duration
	// MaxWait is the longest Take waits in place for a token; a longer
	// wait is handed back to the caller as a *Throttled error, so a worker
	// slot is never held for long. Default 1s.
	MaxWait time.Duration
	// Key names the Redis keys of the limit. Default "importer:ratelimit".
	Key string
	// Log is told when a pause cannot be shared (Redis unreachable): the
	// worker that saw the 429 still waits, the others learn from their own.
	// Default: discard.
	Log *slog.Logger
}

// WithDefaults returns the config with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Limit <= 0 {
		c.Limit = 150
	}
	if c.Period <= 0 {
		c.Period = time.Minute
	}
	if c.MaxWait <= 0 {
		c.MaxWait = time.Second
	}
	if c.Key == "" {
		c.Key = "importer:ratelimit"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Throttled says that no request may go now, and for how long to wait. It is
// not a failure: nothing was sent.
type Throttled struct {
	Wait time.Duration
	// Paused is true when the wait comes from the API itself (a 429, or no
	// requests remaining in its window), not from pacing.
	Paused bool
}

// RetryIn is how long to wait before trying again.
func (e *Throttled) RetryIn() time.Duration { return e.Wait }

func (e *Throttled) Error() string {
	if e.Paused {
		return fmt.Sprintf("the API's rate limit is spent: every worker waits %v", e.Wait.Round(time.Millisecond))
	}
	return fmt.Sprintf("rate limit: next request in %v", e.Wait.Round(time.Millisecond))
}

// Limiter is one rate limit shared by every process on a Redis.
type Limiter struct {
	rdb   redis.UniversalClient
	gcra  *redis_rate.Limiter
	limit redis_rate.Limit
	cfg   Config
	now   func() time.Time
}

// New returns a Limiter on a Redis.
func New(rdb redis.UniversalClient, cfg Config) *Limiter {
	cfg = cfg.WithDefaults()
	// One request less than the limit, spread evenly with no burst: any
	// window of Period, wherever the API starts it, holds at most Limit
	// requests.
	rate := max(cfg.Limit-1, 1)
	return &Limiter{
		rdb:   rdb,
		gcra:  redis_rate.NewLimiter(rdb),
		limit: redis_rate.Limit{Rate: rate, Burst: 1, Period: cfg.Period},
		cfg:   cfg,
		now:   time.Now,
	}
}

func (l *Limiter) pauseKey() string { return l.cfg.Key + ":pause" }

// Take reserves n requests. It returns nil when they may go now, after
// waiting in place at most MaxWait, or a *Throttled error with the wait.
func (l *Limiter) Take(ctx context.Context, n int) error {
	for {
		pause, err := l.rdb.PTTL(ctx, l.pauseKey()).Result()
		if err != nil {
			return fmt.Errorf("error reading the rate-limit pause: %w", err)
		}
		if pause > 0 {
			return &Throttled{Wait: pause, Paused: true}
		}
		res, err := l.gcra.AllowN(ctx, l.cfg.Key, l.limit, n)
		if err != nil {
			return fmt.Errorf("error taking a rate-limit token: %w", err)
		}
		if res.Allowed >= n {
			return nil
		}
		if res.RetryAfter > l.cfg.MaxWait {
			return &Throttled{Wait: res.RetryAfter}
		}
		t := time.NewTimer(res.RetryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Observe reads an API answer's rate-limit news. A 429, or a window with no
// requests remaining, pauses every worker until the window ends: for as long
// as Retry-After says, else until the next window boundary of the clock.
func (l *Limiter) Observe(status int, header http.Header) {
	remaining, hasRemaining := atoi(header.Get("x-ratelimit-remaining"))
	if status != http.StatusTooManyRequests && !(hasRemaining && remaining == 0) {
		return
	}
	wait := l.untilWindowEnds()
	if secs, ok := atoi(header.Get("Retry-After")); ok && secs > 0 {
		wait = time.Duration(secs) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Keep the longer of two pauses.
	if cur, err := l.rdb.PTTL(ctx, l.pauseKey()).Result(); err == nil && cur >= wait {
		return
	}
	if err := l.rdb.Set(ctx, l.pauseKey(), status, wait).Err(); err != nil {
		l.cfg.Log.Warn("the API asked for a pause that could not be shared with the other workers", "wait", wait, "err", err)
	}
}

// untilWindowEnds is the time to the next Period boundary of the clock, plus
// a margin for clocks that disagree a little.
func (l *Limiter) untilWindowEnds() time.Duration {
	now := l.now()
	return now.Truncate(l.cfg.Period).Add(l.cfg.Period).Sub(now) + 250*time.Millisecond
}

// Limit is the requests per Period the limiter allows.
func (l *Limiter) Limit() int { return l.cfg.Limit }

func atoi(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// IsThrottled reports whether err is a *Throttled and returns it.
func IsThrottled(err error) (*Throttled, bool) {
	var t *Throttled
	ok := errors.As(err, &t)
	return t, ok
}
