package poll_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/poll"
	"github.com/propexo-importer/importer/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// simulate runs rows through the learned schedule of one integration, with
// resolution times drawn from latency, and returns the status reads per row
// of the last half (once learned).
func simulate(l *poll.Learner, integration string, rows int, latency func() time.Duration) float64 {
	ctx := context.Background()
	reads := 0
	for i := 0; i < rows; i++ {
		resolvesAt := latency()
		first, second := l.CheckDelays(ctx, integration)
		n := 1
		at := first
		for {
			if i >= rows/2 {
				reads++
			}
			pending := resolvesAt > at
			l.Observe(ctx, integration, n, pending)
			if !pending {
				break
			}
			n++
			if n == 2 {
				at = max(second, at)
			} else {
				at *= 2
			}
		}
	}
	return float64(reads) / float64(rows-rows/2)
}

func TestCheckDelaysLearnEachIntegration(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{})
	simulate(l, "fast", 400, func() time.Duration { return 3 * time.Second })
	simulate(l, "slow", 400, func() time.Duration { return 12 * time.Second })
	for name, want := range map[string]time.Duration{"fast": 3 * time.Second, "slow": 12 * time.Second} {
		first, _ := l.CheckDelays(context.Background(), name)
		if ratio := first.Seconds() / want.Seconds(); ratio < 0.9 || ratio > 1.35 {
			t.Errorf("%s: first check at %v for writes that take %v", name, first, want)
		}
	}
	if first, second := l.CheckDelays(context.Background(), "unknown"); first != 2*time.Second || second != 8*time.Second {
		t.Errorf("an integration never seen: %v, %v; want the defaults", first, second)
	}
}

// On the latency the issue names (log-normal, median 2s, p99 30s), the
// learned schedule costs at most 1.3 status reads per row.
func TestLognormalCostsAtMost13ReadsPerRow(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	sigma := math.Log(30.0/2.0) / 2.3263
	perRow := simulate(l, "lognormal", 3000, func() time.Duration {
		return time.Duration(2 * math.Exp(sigma*rng.NormFloat64()) * float64(time.Second))
	})
	first, second := l.CheckDelays(context.Background(), "lognormal")
	t.Logf("%.3f reads per row; first check at %v, second at %v", perRow, first.Round(10*time.Millisecond), second.Round(10*time.Millisecond))
	if perRow > 1.3 {
		t.Errorf("%.3f status reads per row, want at most 1.3", perRow)
	}
	// The first check sits near the 80th percentile (2s·e^(0.842σ) ≈ 5.3s).
	if first < 4*time.Second || first > 7*time.Second {
		t.Errorf("first check at %v, want about 5.3s", first)
	}
}

func TestBounds(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{Min: time.Second, Max: 10 * time.Second})
	ctx := context.Background()
	for i := 0; i < 500; i++ {
		l.Observe(ctx, "never", 1, true)
		l.Observe(ctx, "instant", 1, false)
	}
	if first, _ := l.CheckDelays(ctx, "never"); first != 10*time.Second {
		t.Errorf("writes that never resolve: first check at %v, want the 10s cap", first)
	}
	if first, _ := l.CheckDelays(ctx, "instant"); first != time.Second {
		t.Errorf("instant writes: first check at %v, want the 1s floor", first)
	}
}

// With Batch, the observations of a batch land in Redis at most once per
// Batch, as at most 5 steps, and learn the same thing.
func TestBatchSumsObservations(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	l := poll.New(rdb, poll.Config{Batch: 200 * time.Millisecond, Key: "poll:batch"})
	l.Observe(ctx, "int", 1, true) // the first lands at once
	after1, _ := rdb.HGet(ctx, "poll:batch", "int:1").Float64()
	for range 20 {
		l.Observe(ctx, "int", 1, true)
	}
	if v, _ := rdb.HGet(ctx, "poll:batch", "int:1").Float64(); v != after1 {
		t.Fatalf("observations inside a batch reached Redis: %v, then %v", after1, v)
	}
	first, _ := l.CheckDelays(ctx, "int")
	time.Sleep(250 * time.Millisecond)
	l.Observe(ctx, "int", 1, true) // the batch is due: 21 observations make 5 steps
	v, _ := rdb.HGet(ctx, "poll:batch", "int:1").Float64()
	if want := after1 + 5*0.1*0.8; v < want-1e-9 || v > want+1e-9 {
		t.Errorf("after the batch: %v, want %v", v, want)
	}
	if again, _ := l.CheckDelays(ctx, "int"); again <= first {
		t.Errorf("the schedule did not move later after PENDING checks: %v, then %v", first, again)
	}

	// Learning with batches converges as without: here 10 checks a batch,
	// on a clock the test moves, so the batches do not depend on the
	// machine's speed.
	now := time.Now()
	batched := poll.New(rdb, poll.Config{Batch: time.Millisecond, Key: "poll:batch2", Now: func() time.Time { return now }})
	for range 150 {
		for range 10 {
			first, _ := batched.CheckDelays(ctx, "fast")
			batched.Observe(ctx, "fast", 1, 3*time.Second > first)
		}
		now = now.Add(2 * time.Millisecond)
	}
	if first, _ := batched.CheckDelays(ctx, "fast"); first < 2700*time.Millisecond || first > 4*time.Second {
		t.Errorf("batched learning put the first check at %v for writes that take 3s", first)
	}
}
