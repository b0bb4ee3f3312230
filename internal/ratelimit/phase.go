package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The API's windows are Period long, but the docs do not say where one
// starts. The limiter learns it from the answers: x-ratelimit-remaining
// only goes down within a window (every request, of any worker, spends
// one), so an answer whose remaining is higher than that of a request
// answered before it was sent marks a new window, started between the
// earlier request's send and the later one's answer. That interval, as an
// arc of the Period (an offset from the clock's Period boundaries and a
// width), is the phase; the arcs later resets give narrow it down. It is
// kept in Redis beside the limit, so every worker paces to what any of them
// learned. Until a reset is seen, windows are taken to start on the clock's
// boundaries.

// observation is one answer's news: when its request left, when its answer
// came, and what remained of the window it was counted in.
type observation struct {
	sent, answered time.Time
	remaining      int
}

// arc is where, within a Period, a window starts: at an offset from the
// clock's Period boundaries no earlier than from and no later than
// from+width.
type arc struct {
	from, width time.Duration
}

// end is the latest the window that holds t can end, by the arc: the next
// start after t, taking the latest the arc allows.
func (a arc) end(t time.Time, period time.Duration) time.Time {
	phase := (a.from + a.width) % period
	return t.Add(-phase).Truncate(period).Add(phase).Add(period)
}

// intersect narrows a by b, two arcs of a circle of period. Arcs that do
// not meet mean the API's phase moved (it restarted, say): b wins.
func (a arc) intersect(b arc, period time.Duration) arc {
	// Place b's start within half a period of a's, then intersect the
	// two intervals on the line.
	shift := b.from - a.from
	for shift > period/2 {
		shift -= period
	}
	for shift < -period/2 {
		shift += period
	}
	lo := max(a.from, a.from+shift)
	hi := min(a.from+a.width, a.from+shift+b.width)
	if hi < lo {
		return b
	}
	from := lo % period
	if from < 0 {
		from += period
	}
	return arc{from: from, width: hi - lo}
}

// phases keeps a process's recent observations, to pair a new answer with
// the last one answered before its request left, and the arc learned,
// shared through Redis.
type phases struct {
	rdb    redis.UniversalClient
	key    string
	period time.Duration

	mu      sync.Mutex
	recent  []observation // by answered time, the last few
	known   arc
	learned bool
	read    time.Time // when known was last read from Redis
}

// recentKept is how many answers a process keeps to pair new ones with:
// more than the requests it has in flight at once.
const recentKept = 256

// refreshEvery is how often a process reads the arc the others learned.
const refreshEvery = 2 * time.Second

// observe records an answer and, when it shows a window that started since
// an earlier request, narrows the arc and shares it, and returns when that
// earlier request left: the new window started after it.
func (p *phases) observe(o observation, now time.Time) (after time.Time, reset bool) {
	p.mu.Lock()
	var before *observation
	for i := len(p.recent) - 1; i >= 0; i-- {
		if !p.recent[i].answered.After(o.sent) {
			before = &p.recent[i]
			break
		}
	}
	var seen arc
	// An interval shorter than a period holds one window's start at most:
	// with remaining gone up, exactly one.
	reset = before != nil && o.remaining > before.remaining && o.answered.Sub(before.sent) < p.period
	if reset {
		seen = arc{from: sinceBoundary(before.sent, p.period), width: o.answered.Sub(before.sent)}
	}
	p.recent = append(p.recent, o)
	if len(p.recent) > recentKept {
		p.recent = append(p.recent[:0], p.recent[len(p.recent)-recentKept:]...)
	}
	p.mu.Unlock()
	if !reset {
		return time.Time{}, false
	}
	p.share(seen, now)
	return before.sent, true
}

// sinceBoundary is how long after the clock's last Period boundary t is.
func sinceBoundary(t time.Time, period time.Duration) time.Duration {
	return t.Sub(t.Truncate(period))
}

// share narrows the arc in Redis by a new one (optimistically: a
// concurrent writer makes it try again), and keeps the result.
func (p *phases) share(seen arc, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var result arc
	update := func(tx *redis.Tx) error {
		stored, ok, err := readArc(ctx, tx, p.key)
		if err != nil {
			return err
		}
		result = narrow(stored, ok, seen, p.period)
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HSet(ctx, p.key, "from_ms", result.from.Milliseconds(), "width_ms", result.width.Milliseconds())
			pipe.Expire(ctx, p.key, 7*24*time.Hour)
			return nil
		})
		return err
	}
	var err error
	for range 3 {
		if err = p.rdb.Watch(ctx, update, p.key); !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		// Redis out of reach: this process keeps what it saw.
		result = narrow(p.known, p.learned, seen, p.period)
	}
	p.known, p.learned, p.read = result, true, now
}

// narrow is what a new arc adds to the known one: their intersection
// when both are under half a period (two such arcs meet in one piece, if
// at all), else the narrower of the two (an arc as wide as a pause, seen
// before the phase was known, gives way to the narrow ones that follow).
func narrow(known arc, ok bool, seen arc, period time.Duration) arc {
	switch {
	case !ok:
		return seen
	case known.width < period/2 && seen.width < period/2:
		return known.intersect(seen, period)
	case seen.width < known.width:
		return seen
	}
	return known
}

// readArc reads the shared arc; ok is false when none is known.
func readArc(ctx context.Context, c redis.Cmdable, key string) (arc, bool, error) {
	v, err := c.HMGet(ctx, key, "from_ms", "width_ms").Result()
	if err != nil {
		return arc{}, false, err
	}
	from, ok1 := v[0].(string)
	width, ok2 := v[1].(string)
	if !ok1 || !ok2 {
		return arc{}, false, nil
	}
	f, err1 := strconv.ParseInt(from, 10, 64)
	w, err2 := strconv.ParseInt(width, 10, 64)
	if err1 != nil || err2 != nil {
		return arc{}, false, nil
	}
	return arc{from: time.Duration(f) * time.Millisecond, width: time.Duration(w) * time.Millisecond}, true, nil
}

// current is the arc as known now (re-read from Redis every refreshEvery),
// and whether any is.
func (p *phases) current(now time.Time) (arc, bool) {
	p.mu.Lock()
	stale := now.Sub(p.read) >= refreshEvery
	known, learned := p.known, p.learned
	p.mu.Unlock()
	if !stale {
		return known, learned
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	stored, ok, err := readArc(ctx, p.rdb, p.key)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.read = now
	if err == nil && ok {
		p.known, p.learned = stored, true
	}
	return p.known, p.learned
}
