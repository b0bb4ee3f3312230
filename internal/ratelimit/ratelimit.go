// Package ratelimit shares the write API's rate limit between every worker
// through Redis: a GCRA token bucket (go-redis/redis_rate) paced so that no
// fixed window of the API's sees more than the limit, wherever the API
// starts its windows (learned from the answers: phase.go), and a shared pause that
// stops everyone when the API says the window is spent (a 429, or
// x-ratelimit-remaining at 0) or is being spent by someone else too (fewer
// requests remaining than the pace needs to the window's end). The limit
// itself follows the x-ratelimit-limit every answer announces, so a
// contract of 60 or 600 a minute is run at its own limit, under an
// optional cap.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Config sizes a Limiter. The zero value of each field is its default.
type Config struct {
	// Limit is how many requests the API allows per Period, for every
	// worker together, until an answer announces its own limit
	// (x-ratelimit-limit), which the limiter then follows. Default 150.
	Limit int
	// Max caps the limit an answer announces: the limiter never runs
	// faster. Default 0: no cap.
	Max int
	// Period is the API's window. Default one minute.
	Period time.Duration
	// MaxWait is the longest Take waits in place for a token; a longer
	// wait is handed back to the caller as a *Throttled error, so a worker
	// slot is never held for long. Default 1s.
	MaxWait time.Duration
	// Key names the Redis keys of the limit. Default "importer:ratelimit".
	Key string
	// Now tells the time, which places the API's windows (on the clock's
	// Period boundaries until the answers show where they start). Default
	// time.Now.
	Now func() time.Time
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
	if c.Now == nil {
		c.Now = time.Now
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
	limit atomic.Int64 // requests per Period, as last announced
	phase *phases      // where the API's windows start, as learned
	sends *sendLog     // the requests taken, until the phase is learned
	asked *demand      // how many takes waited lately
	cfg   Config
}

// New returns a Limiter on a Redis.
func New(rdb redis.UniversalClient, cfg Config) *Limiter {
	cfg = cfg.WithDefaults()
	if cfg.Max > 0 && cfg.Limit > cfg.Max {
		cfg.Limit = cfg.Max
	}
	l := &Limiter{rdb: rdb, gcra: redis_rate.NewLimiter(rdb), cfg: cfg,
		phase: &phases{rdb: rdb, key: cfg.Key + ":phase", period: cfg.Period},
		sends: newSendLog(rdb, cfg.Key+":sent", cfg.Period),
		asked: &demand{period: cfg.Period}}
	l.limit.Store(int64(cfg.Limit))
	return l
}

// pace is the GCRA's limit: the limit spread evenly over Period, less a
// burst of a fiftieth of it (at least one): a request that comes late
// (every worker busy when its token came) leaves a token for the next
// instead of losing it, and any window of Period, wherever the API starts
// it, still holds at most the burst and the rate: the limit.
func (l *Limiter) pace() redis_rate.Limit {
	limit := int(l.limit.Load())
	burst := max(limit/50, 1)
	return redis_rate.Limit{Rate: max(limit-burst, 1), Burst: burst, Period: l.cfg.Period}
}

func (l *Limiter) pauseKey() string { return l.cfg.Key + ":pause" }

// Take reserves n requests. It returns nil when they may go now, after
// waiting in place at most MaxWait, or a *Throttled error with the wait.
func (l *Limiter) Take(ctx context.Context, n int) error {
	waited := false
	for {
		pause, err := l.rdb.PTTL(ctx, l.pauseKey()).Result()
		if err != nil {
			return fmt.Errorf("error reading the rate-limit pause: %w", err)
		}
		if pause > 0 {
			l.asked.add(l.cfg.Now(), true)
			return &Throttled{Wait: pause, Paused: true}
		}
		res, err := l.gcra.AllowN(ctx, l.cfg.Key, l.pace(), n)
		if err != nil {
			return fmt.Errorf("error taking a rate-limit token: %w", err)
		}
		now := l.cfg.Now()
		if res.Allowed >= n {
			if !waited {
				l.asked.add(now, false)
			}
			if !l.phaseKnown(now) {
				l.sends.add(ctx, now, n)
			}
			return nil
		}
		if !waited {
			// Counted as it starts to wait: the planner hears of a
			// scarce budget as soon as requests queue for it.
			waited = true
			l.asked.add(now, true)
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

// Observe reads the rate-limit news of an API answer to a request sent at
// sent. The limit it announces (x-ratelimit-limit) becomes the limit,
// under Max. A 429, or a window with no requests remaining, pauses every
// worker until the window ends: for as long as Retry-After says, else until
// the next window boundary of the clock. Fewer requests remaining than the
// pace would spend before the window ends means another application spends
// the same budget: every worker pauses long enough to spend only what
// remains (before the windows' phase is known, the window's end is placed
// by the requests the workers took, when they account for all it counted;
// else the end is the clock's guess, and the pause a quarter of a window at
// most). What remains is news of the window the request was counted in:
// an answer that comes back after that window ended (one the API held
// back past 80%, say) tells nothing of the new one.
func (l *Limiter) Observe(status int, header http.Header, sent time.Time) {
	// The window counts down from what the API announces; the workers
	// pace to it, under Max.
	windowLimit, announced := atoi(header.Get("x-ratelimit-limit"))
	if announced = announced && windowLimit > 0; announced {
		limit := windowLimit
		if l.cfg.Max > 0 && limit > l.cfg.Max {
			limit = l.cfg.Max
		}
		if old := l.limit.Swap(int64(limit)); old != int64(limit) {
			l.cfg.Log.Info("the API announces its rate limit", "limit", limit, "was", old, "period", l.cfg.Period)
		}
	} else {
		windowLimit = int(l.limit.Load())
	}
	remaining, hasRemaining := atoi(header.Get("x-ratelimit-remaining"))
	now := l.cfg.Now()
	if hasRemaining {
		if after, reset := l.phase.observe(observation{sent: sent, answered: now, remaining: remaining}, now); reset {
			l.liftPausesOfWindowsBefore(after)
		}
	}
	left, known := l.windowLeft(sent)
	var wait time.Duration
	switch {
	case status == http.StatusTooManyRequests:
		wait = l.untilWindowEnds()
		if secs, ok := atoi(header.Get("Retry-After")); ok && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
	case !hasRemaining || left <= 0:
		return // no news, or news of a window that is over
	case remaining == 0:
		wait = left
	case known:
		wait = l.shareWait(remaining, left)
	default:
		// Where the window ends is not known yet: the clock's guess may
		// be long (what remains is plenty for the seconds truly left), or
		// right (requests sent at the default pace before a lower limit
		// was announced). The requests every worker took place it, when
		// they alone spent what the window counted (sends.go). Else a
		// quarter of a window at most: long enough to make up for the
		// latter, short enough that requests resume and show the new
		// window soon after it starts.
		if wait = l.shareWait(remaining, left); wait > 0 {
			end, ok := l.sends.windowEnd(context.Background(), windowLimit-remaining, max(windowLimit/50, 5), sent)
			if ok {
				wait = l.shareWait(remaining, end.Sub(now)+clockMargin)
			} else {
				wait = min(wait, l.cfg.Period/4)
			}
		}
	}
	if wait <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Keep the longer of two pauses.
	if cur, err := l.rdb.PTTL(ctx, l.pauseKey()).Result(); err == nil && cur >= wait {
		return
	}
	l.cfg.Log.Debug("every worker pauses for the API's window", "wait", wait, "status", status, "remaining", remaining, "phase_known", known)
	if err := l.rdb.Set(ctx, l.pauseKey(), fmt.Sprintf("%d %d", status, sent.UnixMilli()), wait).Err(); err != nil {
		l.cfg.Log.Warn("the API asked for a pause that could not be shared with the other workers", "wait", wait, "err", err)
	}
}

// liftPause deletes the shared pause if it came of news of a request sent
// no later than ARGV[1] (unix ms): the pause's value is "status sent_ms".
var liftPause = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local sent = tonumber(string.match(v, ' (%d+)$'))
if sent and sent <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0`)

// liftPausesOfWindowsBefore ends the shared pause that news of a window
// that has since ended asked for (a request sent no later than after, when
// a new window is known to have started after it): the window it waited
// out is over. A pause taken before the phase was learned (the clock's
// minute assumed) ends here too.
func (l *Limiter) liftPausesOfWindowsBefore(after time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := liftPause.Run(ctx, l.rdb, []string{l.pauseKey()}, after.UnixMilli()).Err(); err != nil {
		l.cfg.Log.Warn("cannot end a pause of a window that is over (it times out)", "err", err)
	}
}

// shareWait is how long to pause when remaining requests are fewer than
// the pace spends in the left of the window (with a tenth to spare for
// the pace's own unevenness): long enough that, paced again after it, the
// rest of the window spends no more than remains. A pause shorter than the
// pace's own spacing between two requests changes nothing; any longer one
// counts. In a short window, the requests sent at the default pace before
// the first answer announced a lower limit are made up by a pause well
// under a second.
func (l *Limiter) shareWait(remaining int, left time.Duration) time.Duration {
	limit := l.limit.Load()
	perSecond := float64(limit) / l.cfg.Period.Seconds()
	needed := perSecond * left.Seconds()
	if float64(remaining) >= 0.9*needed {
		return 0
	}
	wait := left - time.Duration(float64(remaining)/perSecond*float64(time.Second))
	if wait < l.cfg.Period/time.Duration(limit) {
		return 0
	}
	return wait
}

// windowLeft is what is left now of the window a request sent at sent was
// counted in (negative once it is over), plus a margin for clocks that
// disagree a little. The window ends where the API's windows were seen
// to start (the latest the learned phase allows); until a new window has
// been seen, on the clock's Period boundary.
// It also tells whether the phase is known.
func (l *Limiter) windowLeft(sent time.Time) (time.Duration, bool) {
	now := l.cfg.Now()
	end := sent.Truncate(l.cfg.Period).Add(l.cfg.Period)
	a, known := l.phase.current(now)
	if known {
		end = a.end(sent, l.cfg.Period)
	}
	return end.Sub(now) + clockMargin, known
}

// clockMargin is added to a window's end for clocks that disagree a
// little.
const clockMargin = 250 * time.Millisecond

// phaseKnown tells whether the windows' phase is learned.
func (l *Limiter) phaseKnown(now time.Time) bool {
	_, ok := l.phase.current(now)
	return ok
}

// untilWindowEnds is the time to the end of the window now, plus a margin
// for clocks that disagree a little.
func (l *Limiter) untilWindowEnds() time.Duration {
	left, _ := l.windowLeft(l.cfg.Now())
	return left
}

// Phase is where the API's windows start, as learned: their offset from
// the clock's Period boundaries, at the latest; ok is false until a new
// window has been seen.
func (l *Limiter) Phase() (offset time.Duration, ok bool) {
	a, ok := l.phase.current(l.cfg.Now())
	return (a.from + a.width) % l.cfg.Period, ok
}

// Scarce tells whether the API's budget is what holds requests back: most
// of this process's takes in the last Period or two had to wait for it.
// Then a request saved (a status read made later, say) is one more row
// written. (A memory of a quarter of a Period flips to prompt plans in the
// short lulls of a busy import: 2.11 requests a row against 2.04.)
func (l *Limiter) Scarce() bool { return l.asked.scarce(l.cfg.Now()) }

// Limit is the requests per Period the limiter allows now.
func (l *Limiter) Limit() int { return int(l.limit.Load()) }

// PerSecond is the rate the limiter allows now, in requests a second.
func (l *Limiter) PerSecond() float64 { return float64(l.Limit()) / l.cfg.Period.Seconds() }

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
