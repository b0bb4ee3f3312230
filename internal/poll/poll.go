// Package poll learns when to read a write's status. Every status read
// spends rate budget, so a check is worth making only where the write has
// likely resolved. For each integration it tracks two quantiles of the
// resolution time — where the first check finds most writes resolved, and
// where the second finds nearly all — with a stochastic-approximation update
// (Robbins-Monro) shared by every worker through Redis: a check that finds
// the write still PENDING moves its quantile later, one that finds it
// resolved moves it a little earlier, and the quantile settles where the
// target share of checks succeed.
package poll

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// Config tunes a Learner. The zero value of each field is its default.
type Config struct {
	// Initial is the first check's delay before anything is learned.
	// Default importer.DefaultPollInitial.
	Initial time.Duration
	// Min and Max bound the learned delays. Defaults 1s and
	// importer.DefaultPollMax.
	Min, Max time.Duration
	// First is the share of writes the first check should find resolved;
	// Second, the share of those still PENDING then that the second check
	// should find resolved. Defaults 0.8 and 0.85: about 97% of writes are
	// resolved by the second check, for about 1.25 reads a write.
	First, Second float64
	// Rate is the step of the update, in log-seconds. Default 0.1.
	Rate float64
	// Key is the Redis hash of the learned delays. Default
	// "importer:poll".
	Key string
	// Batch, when set, saves round trips at high rates: observations are
	// gathered in memory and, at most once per Batch, added to Redis as
	// their mean step times their number, up to batchSteps (a batch of a
	// few moves as they would one by one; the many observations of a busy
	// batch were made on one schedule, and make a bounded move, not a
	// leap); a schedule read from Redis is reused for Batch. Default 0:
	// every observation is a step in Redis.
	Batch time.Duration
	// Now tells the time of the batches. Default time.Now.
	Now func() time.Time
}

// WithDefaults returns the config with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Initial <= 0 {
		c.Initial = importer.DefaultPollInitial
	}
	if c.Min <= 0 {
		c.Min = time.Second
	}
	if c.Max <= 0 {
		c.Max = importer.DefaultPollMax
	}
	if c.First <= 0 || c.First >= 1 {
		c.First = 0.8
	}
	if c.Second <= 0 || c.Second >= 1 {
		c.Second = 0.85
	}
	if c.Rate <= 0 {
		c.Rate = 0.1
	}
	if c.Key == "" {
		c.Key = "importer:poll"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Learner schedules status checks from what earlier checks found.
type Learner struct {
	rdb redis.UniversalClient
	cfg Config

	mu      sync.Mutex
	steps   map[string]batch // field → steps not in Redis yet
	flushed time.Time
	cache   map[string]schedule // integration → delays read from Redis
}

type batch struct {
	sum float64
	n   int
}

type schedule struct {
	first, second time.Duration
	read          time.Time
}

// New returns a Learner on a Redis.
func New(rdb redis.UniversalClient, cfg Config) *Learner {
	return &Learner{rdb: rdb, cfg: cfg.WithDefaults(), steps: map[string]batch{}, cache: map[string]schedule{}}
}

// CheckDelays returns when to read the status of an integration's write, counted
// from its submit: the first and the second check. On a Redis error it falls
// back to the defaults: a check a little early or late is better than none.
func (l *Learner) CheckDelays(ctx context.Context, integrationID string) (first, second time.Duration) {
	if l.cfg.Batch > 0 {
		l.mu.Lock()
		c, ok := l.cache[integrationID]
		l.mu.Unlock()
		if ok && l.cfg.Now().Sub(c.read) < l.cfg.Batch {
			return c.first, c.second
		}
		defer func() {
			l.mu.Lock()
			l.cache[integrationID] = schedule{first, second, l.cfg.Now()}
			l.mu.Unlock()
		}()
	}
	vals, err := l.rdb.HMGet(ctx, l.cfg.Key, integrationID+":1", integrationID+":2").Result()
	first = l.cfg.Initial
	second = 4 * first
	if err == nil {
		if v, ok := logSeconds(vals[0]); ok {
			first = v
		}
		if v, ok := logSeconds(vals[1]); ok {
			second = v
		}
	}
	first = l.clamp(first)
	second = max(l.clamp(second), first)
	return first, second
}

// Observe learns from check number n of a write of the integration: pending
// tells whether the write was still PENDING. Checks after the second teach
// nothing.
func (l *Learner) Observe(ctx context.Context, integrationID string, n int, pending bool) {
	var q float64
	switch n {
	case 1:
		q = l.cfg.First
	case 2:
		q = l.cfg.Second
	default:
		return
	}
	field := integrationID + ":" + strconv.Itoa(n)
	step := -l.cfg.Rate * (1 - q)
	if pending {
		step = l.cfg.Rate * q
	}
	if l.cfg.Batch <= 0 {
		l.apply(ctx, field, step)
		return
	}
	l.mu.Lock()
	b := l.steps[field]
	l.steps[field] = batch{b.sum + step, b.n + 1}
	var due map[string]batch
	if now := l.cfg.Now(); now.Sub(l.flushed) >= l.cfg.Batch {
		due, l.steps, l.flushed = l.steps, map[string]batch{}, now
	}
	l.mu.Unlock()
	for f, b := range due {
		l.apply(ctx, f, b.sum/float64(b.n)*float64(min(b.n, batchSteps)))
	}
}

// batchSteps is the most steps one batch of observations moves a delay.
const batchSteps = 5

// apply adds a step to a learned delay in Redis.
func (l *Learner) apply(ctx context.Context, field string, step float64) {
	start := l.cfg.Initial.Seconds()
	if strings.HasSuffix(field, ":2") {
		start *= 4
	}
	// Start from the default schedule on the first observation, then
	// move; HINCRBYFLOAT adds up concurrent workers' steps.
	pipe := l.rdb.TxPipeline()
	pipe.HSetNX(ctx, l.cfg.Key, field, math.Log(start))
	moved := pipe.HIncrByFloat(ctx, l.cfg.Key, field, step)
	if _, err := pipe.Exec(ctx); err != nil {
		return
	}
	// Keep the value inside the bounds, so a long run of one kind cannot
	// push it where it takes ages to come back.
	lo, hi := math.Log(l.cfg.Min.Seconds()), math.Log(l.cfg.Max.Seconds())
	if v := moved.Val(); v < lo || v > hi {
		// A failed clamp leaves the value out of bounds until the next
		// observation clamps it; Delays clamps what it reads anyway.
		_ = l.rdb.HSet(ctx, l.cfg.Key, field, math.Min(math.Max(v, lo), hi)).Err()
	}
}

func (l *Learner) clamp(d time.Duration) time.Duration {
	return min(max(d, l.cfg.Min), l.cfg.Max)
}

func logSeconds(v any) (time.Duration, bool) {
	s, ok := v.(string)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return time.Duration(math.Exp(f) * float64(time.Second)), true
}
