package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/ratelimit"
	"github.com/propexo-importer/importer/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// Three limiters on one Redis (three workers) share one budget: no window
// of the period, wherever it starts, sees more than the limit, and the
// budget is used.
func TestWorkersShareOneLimit(t *testing.T) {
	rdb := redistest.Client(t)
	cfg := ratelimit.Config{Limit: 10, Period: time.Second, MaxWait: 2 * time.Second}
	var mu sync.Mutex
	var taken []time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		l := ratelimit.New(rdb, cfg)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if err := l.Take(ctx, 1); err == nil {
						mu.Lock()
						taken = append(taken, time.Now())
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	sort.Slice(taken, func(i, j int) bool { return taken[i].Before(taken[j]) })
	for i := range taken {
		n := 0
		for j := i; j < len(taken) && taken[j].Sub(taken[i]) < time.Second; j++ {
			n++
		}
		if n > 10 {
			t.Fatalf("%d requests in the second from %v, limit 10", n, taken[i])
		}
	}
	// 3s at 9 a second, plus the first: about 28.
	if len(taken) < 24 || len(taken) > 31 {
		t.Errorf("%d requests in 3s, want about 28: the budget must be used", len(taken))
	}
}

func TestLongWaitsAreHandedBack(t *testing.T) {
	rdb := redistest.Client(t)
	l := ratelimit.New(rdb, ratelimit.Config{Limit: 2, Period: 10 * time.Second, MaxWait: 100 * time.Millisecond})
	ctx := context.Background()
	if err := l.Take(ctx, 1); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err := l.Take(ctx, 1)
	th, ok := ratelimit.IsThrottled(err)
	if !ok || th.Paused || th.Wait < 9*time.Second || th.RetryIn() != th.Wait {
		t.Fatalf("second take = %v, want a ~10s wait handed back", err)
	}
	if time.Since(began) > 500*time.Millisecond {
		t.Error("Take held the caller for a long wait")
	}
}

func TestA429PausesEveryone(t *testing.T) {
	rdb := redistest.Client(t)
	cfg := ratelimit.Config{Limit: 100, Period: time.Minute}
	seen, other := ratelimit.New(rdb, cfg), ratelimit.New(rdb, cfg)
	ctx := context.Background()
	if err := other.Take(ctx, 1); err != nil {
		t.Fatal(err)
	}
	seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Remaining": {"99"}}, time.Now())
	if err := other.Take(ctx, 1); err != nil {
		t.Fatalf("an answer with requests remaining paused: %v", err)
	}
	seen.Observe(http.StatusTooManyRequests, http.Header{"Retry-After": {"7"}}, time.Now())
	th, ok := ratelimit.IsThrottled(other.Take(ctx, 1))
	if !ok || !th.Paused || th.Wait < 6*time.Second || th.Wait > 7*time.Second {
		t.Fatalf("after a 429 another worker got %+v, want a 7s pause", th)
	}
	// A shorter pause does not cut a longer one.
	seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Remaining": {"0"}, "Retry-After": {"1"}}, time.Now())
	if th, _ := ratelimit.IsThrottled(other.Take(ctx, 1)); th == nil || th.Wait < 5*time.Second {
		t.Errorf("the pause was shortened: %+v", th)
	}

	rdb.FlushDB(ctx)
	// Without Retry-After, the pause lasts until the window's end.
	seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Remaining": {"0"}}, time.Now())
	th, ok = ratelimit.IsThrottled(other.Take(ctx, 1))
	if !ok || th.Wait > time.Minute+time.Second {
		t.Fatalf("x-ratelimit-remaining 0: %+v", th)
	}
}

// The limit follows what the API announces in x-ratelimit-limit (a contract
// of 60 or 600 a minute), under the cap a user set.
func TestTheLimitFollowsTheAPI(t *testing.T) {
	rdb := redistest.Client(t)
	follow := ratelimit.New(rdb, ratelimit.Config{Key: "follow"})
	capped := ratelimit.New(rdb, ratelimit.Config{Key: "capped", Limit: 100, Max: 100})
	for _, announced := range []int{60, 600} {
		h := http.Header{"X-Ratelimit-Limit": {fmt.Sprint(announced)}, "X-Ratelimit-Remaining": {fmt.Sprint(announced)}}
		follow.Observe(http.StatusOK, h, time.Now())
		capped.Observe(http.StatusOK, h, time.Now())
		if got := follow.Limit(); got != announced {
			t.Errorf("announced %d: limit %d", announced, got)
		}
		if got, want := capped.Limit(), min(announced, 100); got != want {
			t.Errorf("announced %d under a cap of 100: limit %d, want %d", announced, got, want)
		}
	}
	if got := ratelimit.New(rdb, ratelimit.Config{}).Limit(); got != 150 {
		t.Errorf("before any answer: %d, want 150", got)
	}
}

// Halfway through a window, a pace of 120 a minute needs 60 requests more:
// with 10 remaining, someone else is spending the budget, and every worker
// pauses until the 10 can be spent at the pace by the window's end.
func TestOthersSpendingTheBudgetPauseEveryone(t *testing.T) {
	rdb := redistest.Client(t)
	c := &clock{}
	cfg := ratelimit.Config{Limit: 120, Period: time.Minute, Now: c.Now}
	seen, other := ratelimit.New(rdb, cfg), ratelimit.New(rdb, cfg)
	teachPhase(seen, c, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), 120)
	halfway := time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)
	c.Set(halfway)
	ctx := context.Background()
	seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"58"}}, halfway)
	if err := other.Take(ctx, 1); err != nil {
		t.Fatalf("the budget spent at the pace paused: %v", err)
	}
	seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"10"}}, halfway)
	th, ok := ratelimit.IsThrottled(other.Take(ctx, 1))
	// 30.27s left, 10 requests take 5s at the pace: a pause of 25.27s.
	if !ok || !th.Paused || th.Wait < 24*time.Second || th.Wait > 26*time.Second {
		t.Fatalf("got %+v, want a pause of about 25s", th)
	}
}

// clock is a time a test sets, for a limiter's Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// teachPhase shows a limiter that a window started at start: a request
// answered just before it with 1 remaining, then one sent just after it
// with all but one.
func teachPhase(l *ratelimit.Limiter, c *clock, start time.Time, limit int) {
	header := func(remaining int) http.Header {
		return http.Header{"X-Ratelimit-Limit": {fmt.Sprint(limit)}, "X-Ratelimit-Remaining": {fmt.Sprint(remaining)}}
	}
	c.Set(start.Add(-10 * time.Millisecond))
	l.Observe(http.StatusOK, header(1), start.Add(-20*time.Millisecond))
	c.Set(start.Add(20 * time.Millisecond))
	l.Observe(http.StatusOK, header(limit-1), start.Add(10*time.Millisecond))
}

// An answer the API held back past its window's end (past 80% it holds each
// answer 2 seconds) tells what remained of the window it was counted in,
// not of the new one: no pause comes of it.
func TestNewsOfAWindowThatIsOverIsIgnored(t *testing.T) {
	rdb := redistest.Client(t)
	now := time.Date(2026, 11, 27, 12, 1, 0, 500_000_000, time.UTC) // half a second into a window
	cfg := ratelimit.Config{Limit: 120, Period: time.Minute, Now: func() time.Time { return now }}
	seen, other := ratelimit.New(rdb, cfg), ratelimit.New(rdb, cfg)
	sent := now.Add(-2 * time.Second) // in the window before
	seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"1"}}, sent)
	seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"120"}, "X-Ratelimit-Remaining": {"0"}}, sent)
	if err := other.Take(context.Background(), 1); err != nil {
		t.Fatalf("news of the window before paused the new one: %v", err)
	}
}

// Requests sent at the default pace before the first answer announced a
// lower limit leave fewer remaining than the new pace needs: the pause that
// makes up for them is short in a short window, and it still counts, where
// the window ends not known yet (the clock's boundary, the guess) as once
// it is.
func TestAShortPauseStillCounts(t *testing.T) {
	for _, learned := range []bool{false, true} {
		rdb := redistest.Client(t)
		start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
		c := &clock{}
		cfg := ratelimit.Config{Period: 2 * time.Second, Now: c.Now} // 150 until told
		seen, other := ratelimit.New(rdb, cfg), ratelimit.New(rdb, cfg)
		if learned {
			teachPhase(seen, c, start, 150)
		}
		c.Set(start.Add(200 * time.Millisecond))
		// 4 of 20 spent 0.2s into the window: 2.05s left (with the clock
		// margin; 2.07 by the phase learned) need 20.5 at the pace; the
		// 16 that remain last 1.6s.
		seen.Observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"20"}, "X-Ratelimit-Remaining": {"16"}}, c.Now())
		th, ok := ratelimit.IsThrottled(other.Take(context.Background(), 1))
		if !ok || !th.Paused || th.Wait < 350*time.Millisecond || th.Wait > 500*time.Millisecond {
			t.Errorf("phase learned %v: got %+v (%v), want a pause of about 0.45s", learned, th, ok)
		}
	}
}

// The API's windows start at :23, not on the clock's minute. Until a new
// window is seen, the limiter does not know where the window ends: 130 of
// 600 remaining at :10 pause everyone a quarter of a window at most (on
// the clock's minute they look too few for 50 s, and a pause to match would
// waste the window), and none remaining pauses until the clock's minute,
// for want of better. Once
// x-ratelimit-remaining has gone back up (a request answered with 0
// remaining, then one sent after it with 599), the limiter knows where
// windows start, every worker on the Redis with it, and the pauses taken
// on news of the windows before it end: none remaining at :10 waits for
// :23, not :00.
func TestTheWindowsPhaseIsLearned(t *testing.T) {
	rdb := redistest.Client(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 12, 1, 10, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	at := func(minute, sec, ms int) time.Time {
		return time.Date(2026, 12, 7, 12, minute, sec, ms*1_000_000, time.UTC)
	}
	cfg := ratelimit.Config{Limit: 600, Period: time.Minute, Now: clock}
	seen, other := ratelimit.New(rdb, cfg), ratelimit.New(rdb, cfg)
	ctx := context.Background()
	answer := func(l *ratelimit.Limiter, sent, answered time.Time, remaining int) {
		set(answered)
		l.Observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"600"}, "X-Ratelimit-Remaining": {fmt.Sprint(remaining)}}, sent)
	}

	answer(seen, at(1, 9, 900), at(1, 10, 0), 130)
	if th, ok := ratelimit.IsThrottled(other.Take(ctx, 1)); !ok || th.Wait > 15*time.Second || th.Wait < 14*time.Second {
		t.Fatalf("130 remaining, the window's end unknown: %+v, want a pause of a quarter of the window", th)
	}
	answer(seen, at(1, 9, 950), at(1, 10, 0), 0)
	if th, ok := ratelimit.IsThrottled(other.Take(ctx, 1)); !ok || th.Wait < 49*time.Second {
		t.Fatalf("none remaining, the window's end unknown: %+v, want a pause to the clock's minute", th)
	}

	answer(seen, at(1, 22, 800), at(1, 22, 950), 0)
	answer(seen, at(1, 23, 100), at(1, 23, 300), 599)
	if offset, ok := other.Phase(); !ok || offset < 23*time.Second || offset > 23300*time.Millisecond {
		t.Fatalf("another worker's phase: %v %v, want :23 at the latest by 23.3s", offset, ok)
	}
	if err := other.Take(ctx, 1); err != nil {
		t.Errorf("the pause taken on the clock's guess did not end when the new window was seen: %v", err)
	}
	answer(seen, at(2, 9, 900), at(2, 10, 0), 130)
	if err := other.Take(ctx, 1); err != nil {
		t.Errorf("130 of 600 remaining 13 s before the window ends paused: %v", err)
	}
	answer(seen, at(2, 9, 900), at(2, 10, 0), 0)
	th, ok := ratelimit.IsThrottled(other.Take(ctx, 1))
	if !ok || !th.Paused || th.Wait < 13*time.Second || th.Wait > 14*time.Second {
		t.Errorf("none remaining at :10: %+v, want a pause to :23 (about 13.5 s)", th)
	}
}

// Windows of 6 s start at 2.3 s past the clock's boundaries, and a run
// starts at 5.0 s, 2.7 s into one. Crossing the clock's boundary at 6.0 s,
// 48 of 60 remain: too few for the 6 s the clock's guess leaves, but the
// requests taken since 5.0 s are all the window counted, so it started no
// earlier than 5.0 s and ends by 11.0 s, and 48 are enough: no one pauses.
// The same with two more counted than the workers took (46 remaining: a
// request sent without the limiter, say). Had the window counted many
// more (20 remaining: someone else spends the budget), the clock's guess
// stands, and the pause is a quarter of a window at most.
func TestTheRequestsTakenPlaceTheWindow(t *testing.T) {
	for _, tt := range []struct {
		remaining     int
		minWait, wait time.Duration
	}{{48, 0, 0}, {46, 0, 0}, {20, 1200 * time.Millisecond, 1500 * time.Millisecond}} {
		rdb := redistest.Client(t)
		c := &clock{}
		cfg := ratelimit.Config{Limit: 60, Period: 6 * time.Second, Now: c.Now, Key: fmt.Sprintf("ratelimit-%d", tt.remaining)}
		worker, other := ratelimit.New(rdb, cfg), ratelimit.New(rdb, cfg)
		ctx := context.Background()
		start := time.Date(2026, 12, 7, 12, 0, 5, 0, time.UTC)
		for i := range 12 {
			c.Set(start.Add(time.Duration(i) * 100 * time.Millisecond))
			if err := worker.Take(ctx, 1); err != nil {
				t.Fatal(err)
			}
		}
		sent := c.Now()
		c.Set(sent.Add(100 * time.Millisecond))
		worker.Observe(http.StatusOK, http.Header{"X-Ratelimit-Limit": {"60"}, "X-Ratelimit-Remaining": {fmt.Sprint(tt.remaining)}}, sent)
		err := other.Take(ctx, 1)
		th, paused := ratelimit.IsThrottled(err)
		switch {
		case tt.wait == 0 && err != nil:
			t.Errorf("%d remaining, all of them the workers' own: %v, want no pause", tt.remaining, err)
		case tt.wait > 0 && (!paused || !th.Paused || th.Wait < tt.minWait || th.Wait > tt.wait):
			t.Errorf("%d remaining, 28 spent by someone else: %+v (%v), want a pause of 1.2 to 1.5 s", tt.remaining, th, err)
		}
	}
}

// Requests that come slower than the pace never wait: the budget is not
// scarce. Ten at once, most of them waiting for the pace, make it so, as
// soon as they start to wait.
func TestTheBudgetIsScarceWhenMostTakesWait(t *testing.T) {
	l := ratelimit.New(redistest.Client(t), ratelimit.Config{Limit: 10, Period: time.Second, MaxWait: 2 * time.Second})
	ctx := context.Background()
	for range 5 {
		if err := l.Take(ctx, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if l.Scarce() {
		t.Fatal("5 requests a second of 10 allowed: scarce")
	}
	var wg sync.WaitGroup
	var done atomic.Int32
	for range 10 {
		wg.Go(func() {
			if err := l.Take(ctx, 1); err == nil {
				done.Add(1)
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // at 9 a second, about 3 have gone
	scarce, gone := l.Scarce(), done.Load()
	wg.Wait()
	if !scarce || gone >= 8 {
		t.Errorf("10 requests at once, %d gone after 0.3 s: scarce %v, want true while the rest wait", gone, scarce)
	}
	if done.Load() != 10 {
		t.Errorf("%d of 10 requests taken", done.Load())
	}
}
