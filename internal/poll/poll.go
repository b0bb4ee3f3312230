// Package poll learns when to read a write's status. Every status read
// spends rate budget, so a check is worth making only where the write has
// likely resolved. For each integration it tracks two quantiles of the
// resolution time — where the first check finds most writes resolved, and
// where the second finds nearly all — with a stochastic-approximation update
// (Robbins-Monro) shared by every worker through Redis: a check that finds
// the write still PENDING moves its quantile later, one that finds it
// resolved moves it a little earlier, and the quantile settles where the
// target share of checks succeed. The first observations take long steps
// (the step shrinks as 1/√n down to Rate), so a new integration's schedule
// is found in a few dozen checks; and an integration not seen yet starts
// from what its vendor's other integrations taught.
//
// Two schedules are kept: a prompt one, for when requests are not short
// (a write is known resolved soon after it is), and a frugal one, with
// later checks and fewer reads a write, for when the API's budget is what
// holds the import back (Config.Scarce): there a read saved is a row
// written sooner.
package poll

import (
	"context"
	"math"
	"strconv"
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
	// FrugalFirst and FrugalSecond are the same shares while requests
	// are scarce. Defaults 0.96 and 0.9: about 1.05 reads a write, each
	// known resolved later (on a log-normal latency of median 2 s and p99
	// 30 s, the first check comes at about 15 s instead of 5 s).
	FrugalFirst, FrugalSecond float64
	// Scarce tells whether the API's budget is what holds requests back
	// now (ratelimit.Limiter.Scarce): checks are then planned frugally.
	// Default: never.
	Scarce func() bool
	// Rate is the smallest step of the update, in log-seconds; the n-th
	// observation of a schedule steps by max(Rate, 1/√n). Default 0.1.
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
	share := func(v *float64, def float64) {
		if *v <= 0 || *v >= 1 {
			*v = def
		}
	}
	share(&c.First, 0.8)
	share(&c.Second, 0.85)
	share(&c.FrugalFirst, 0.96)
	share(&c.FrugalSecond, 0.9)
	if c.Scarce == nil {
		c.Scarce = func() bool { return false }
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

// Plan is when to read a write's status, counted from its submit, and
// which schedule said so.
type Plan struct {
	First, Second time.Duration
	// Frugal is true when the frugal schedule planned the checks: the
	// budget was scarce. An observation teaches the schedule that planned
	// its check.
	Frugal bool
}

// Writes names whose writes a schedule is for: an integration, and the
// vendor whose other integrations' schedule an integration not seen yet
// starts from (none when Vendor is empty).
type Writes struct {
	IntegrationID string
	Vendor        importer.Vendor
}

// field is the hash field of check n's delay in the integration's
// schedule; prior is the vendor's, from which it starts.
func (w Writes) field(n int, frugal bool) (field, prior string) {
	suffix := ":" + strconv.Itoa(n)
	if frugal {
		suffix += "f"
	}
	if w.Vendor != "" {
		prior = "vendor/" + string(w.Vendor) + suffix
	}
	return w.IntegrationID + suffix, prior
}

// Learner schedules status checks from what earlier checks found.
type Learner struct {
	rdb redis.UniversalClient
	cfg Config

	mu      sync.Mutex
	steps   map[step]batch // steps not in Redis yet
	flushed time.Time
	cache   map[cached]schedule // delays read from Redis
}

// step is a schedule's field that observations move, the one it starts
// from, and which check's delay it is.
type step struct {
	field, prior string
	check        int
}

type batch struct {
	sum float64 // of unit steps: q when PENDING, -(1-q) when resolved
	n   int
}

type cached struct {
	writes Writes
	frugal bool
}

type schedule struct {
	first, second time.Duration
	read          time.Time
}

// New returns a Learner on a Redis.
func New(rdb redis.UniversalClient, cfg Config) *Learner {
	return &Learner{rdb: rdb, cfg: cfg.WithDefaults(), steps: map[step]batch{}, cache: map[cached]schedule{}}
}

// CheckDelays plans the status checks of a write: the integration's
// learned schedule (frugal when requests are scarce), else its vendor's,
// else the defaults. On a Redis error it falls back to the defaults: a
// check a little early or late is better than none.
func (l *Learner) CheckDelays(ctx context.Context, w Writes) Plan {
	frugal := l.cfg.Scarce()
	key := cached{w, frugal}
	if l.cfg.Batch > 0 {
		l.mu.Lock()
		c, ok := l.cache[key]
		l.mu.Unlock()
		if ok && l.cfg.Now().Sub(c.read) < l.cfg.Batch {
			return Plan{c.first, c.second, frugal}
		}
	}
	own1, vendor1 := w.field(1, frugal)
	own2, vendor2 := w.field(2, frugal)
	fields := []string{own1, own2}
	if vendor1 != "" {
		fields = append(fields, vendor1, vendor2)
	}
	first, second := l.cfg.Initial, 4*l.cfg.Initial
	if vals, err := l.rdb.HMGet(ctx, l.cfg.Key, fields...).Result(); err == nil {
		// The vendor's, then the integration's own, each where known.
		for i := len(vals) - 2; i >= 0; i -= 2 {
			if v, ok := logSeconds(vals[i]); ok {
				first = v
			}
			if v, ok := logSeconds(vals[i+1]); ok {
				second = v
			}
		}
	}
	first = l.clamp(first)
	second = max(l.clamp(second), first)
	if l.cfg.Batch > 0 {
		l.mu.Lock()
		l.cache[key] = schedule{first, second, l.cfg.Now()}
		l.mu.Unlock()
	}
	return Plan{first, second, frugal}
}

// Observe learns from check number n of a write, planned frugally or not:
// pending tells whether the write was still PENDING. The integration's
// schedule learns, and its vendor's. Checks after the second teach
// nothing.
func (l *Learner) Observe(ctx context.Context, w Writes, n int, frugal, pending bool) {
	var q float64
	switch {
	case n == 1 && frugal:
		q = l.cfg.FrugalFirst
	case n == 1:
		q = l.cfg.First
	case n == 2 && frugal:
		q = l.cfg.FrugalSecond
	case n == 2:
		q = l.cfg.Second
	default:
		return
	}
	unit := -(1 - q)
	if pending {
		unit = q
	}
	field, prior := w.field(n, frugal)
	moves := []step{{field, prior, n}}
	if prior != "" {
		moves = append(moves, step{prior, "", n})
	}
	if l.cfg.Batch <= 0 {
		for _, m := range moves {
			l.apply(ctx, m, batch{unit, 1})
		}
		return
	}
	l.mu.Lock()
	for _, m := range moves {
		b := l.steps[m]
		l.steps[m] = batch{b.sum + unit, b.n + 1}
	}
	var due map[step]batch
	if now := l.cfg.Now(); now.Sub(l.flushed) >= l.cfg.Batch {
		due, l.steps, l.flushed = l.steps, map[step]batch{}, now
	}
	l.mu.Unlock()
	for m, b := range due {
		l.apply(ctx, m, b)
	}
}

// batchSteps is the most steps one batch of observations moves a delay.
const batchSteps = 5

// settled is the count of observations an integration's schedule starts
// with when it starts from its vendor's: it steps by Rate, not by the long
// steps of a schedule learned from nothing.
const settled = 100

// moveDelay adds a batch of observations to a learned delay (in
// log-seconds), with its count in field#n. ARGV: field, prior field (”
// for none), the start where neither is known, the batch's sum of unit
// steps, its number of observations, Rate, batchSteps, settled, the
// bounds. The step is max(Rate, 1/√n), n counting the observations
// before the batch and the batch's first; the mean of the batch is taken
// min(number, batchSteps) times.
var moveDelay = redis.NewScript(`
local h, f = KEYS[1], ARGV[1]
local v = tonumber(redis.call('HGET', h, f))
local n = tonumber(redis.call('HGET', h, f .. '#n')) or 0
if not v then
  n = 0
  if ARGV[2] ~= '' then v = tonumber(redis.call('HGET', h, ARGV[2])) end
  if v then n = tonumber(ARGV[8]) else v = tonumber(ARGV[3]) end
end
local k = tonumber(ARGV[5])
local rate = math.max(tonumber(ARGV[6]), 1 / math.sqrt(n + 1))
v = v + rate * tonumber(ARGV[4]) / k * math.min(k, tonumber(ARGV[7]))
v = math.min(math.max(v, tonumber(ARGV[9])), tonumber(ARGV[10]))
redis.call('HSET', h, f, string.format('%.17g', v), f .. '#n', n + k)
return 1`)

// apply adds a batch of observations to a learned delay in Redis, in one
// script: concurrent workers' steps add up, and the value stays inside
// the bounds, so a long run of one kind cannot push it where it takes
// ages to come back. A failure loses the batch: the next one moves it.
func (l *Learner) apply(ctx context.Context, m step, b batch) {
	start := l.cfg.Initial.Seconds()
	if m.check == 2 {
		start *= 4
	}
	_ = moveDelay.Run(ctx, l.rdb, []string{l.cfg.Key}, m.field, m.prior, math.Log(start), b.sum, b.n,
		l.cfg.Rate, batchSteps, settled, math.Log(l.cfg.Min.Seconds()), math.Log(l.cfg.Max.Seconds())).Err()
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
