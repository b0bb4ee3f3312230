package poll_test

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/poll"
	"github.com/propexo-importer/importer/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// simulate runs rows through the learned schedule of an integration, with
// resolution times drawn from latency, and returns the status reads per row
// of the last half (once learned), or of every row with all.
func simulate(l *poll.Learner, w poll.Writes, rows int, latency func() time.Duration, all ...bool) float64 {
	ctx := context.Background()
	reads, counted := 0, 0
	for i := 0; i < rows; i++ {
		resolvesAt := latency()
		plan := l.CheckDelays(ctx, w)
		count := i >= rows/2 || len(all) > 0
		if count {
			counted++
		}
		n := 1
		at := plan.First
		for {
			if count {
				reads++
			}
			pending := resolvesAt > at
			l.Observe(ctx, w, n, plan.Frugal, pending)
			if !pending {
				break
			}
			n++
			if n == 2 {
				at = max(plan.Second, at)
			} else {
				at *= 2
			}
		}
	}
	return float64(reads) / float64(counted)
}

func integration(id string) poll.Writes { return poll.Writes{IntegrationID: id} }

// lognormal is the latency the issues name: median 2 s, p99 30 s.
func lognormal(seed uint64) func() time.Duration {
	rng := rand.New(rand.NewPCG(seed, 2))
	sigma := math.Log(30.0/2.0) / 2.3263
	return func() time.Duration {
		return time.Duration(2 * math.Exp(sigma*rng.NormFloat64()) * float64(time.Second))
	}
}

func TestCheckDelaysLearnEachIntegration(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{})
	simulate(l, integration("fast"), 400, func() time.Duration { return 3 * time.Second })
	simulate(l, integration("slow"), 400, func() time.Duration { return 12 * time.Second })
	for name, want := range map[string]time.Duration{"fast": 3 * time.Second, "slow": 12 * time.Second} {
		first := l.CheckDelays(context.Background(), integration(name)).First
		if ratio := first.Seconds() / want.Seconds(); ratio < 0.9 || ratio > 1.35 {
			t.Errorf("%s: first check at %v for writes that take %v", name, first, want)
		}
	}
	if p := l.CheckDelays(context.Background(), integration("unknown")); p.First != 2*time.Second || p.Second != 8*time.Second || p.Frugal {
		t.Errorf("an integration never seen: %+v; want the defaults, not frugal", p)
	}
}

// On the latency the issue names (log-normal, median 2s, p99 30s), the
// learned schedule costs at most 1.3 status reads per row.
func TestLognormalCostsAtMost13ReadsPerRow(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{})
	perRow := simulate(l, integration("lognormal"), 3000, lognormal(1))
	p := l.CheckDelays(context.Background(), integration("lognormal"))
	t.Logf("%.3f reads per row; first check at %v, second at %v", perRow, p.First.Round(10*time.Millisecond), p.Second.Round(10*time.Millisecond))
	if perRow > 1.3 {
		t.Errorf("%.3f status reads per row, want at most 1.3", perRow)
	}
	// The first check sits near the 80th percentile (2s·e^(0.842σ) ≈ 5.3s).
	if p.First < 4*time.Second || p.First > 7*time.Second {
		t.Errorf("first check at %v, want about 5.3s", p.First)
	}
}

// While the budget is scarce, the checks are planned frugally: on the same
// latency, at most 1.08 reads a row from the first row on (the schedule
// learned from nothing), the first check near the 96th percentile
// (2s·e^(1.751σ) ≈ 15.3s). The prompt schedule is its own: a frugal run
// leaves it as it was.
func TestAScarceBudgetPlansFewerReads(t *testing.T) {
	scarce := true
	l := poll.New(redistest.Client(t), poll.Config{Scarce: func() bool { return scarce }})
	ctx := context.Background()
	w := integration("lognormal")
	perRow := simulate(l, w, 600, lognormal(3), true)
	p := l.CheckDelays(ctx, w)
	t.Logf("%.3f reads per row; first check at %v, second at %v", perRow, p.First.Round(10*time.Millisecond), p.Second.Round(10*time.Millisecond))
	if perRow > 1.08 {
		t.Errorf("%.3f status reads per row while scarce, want at most 1.08", perRow)
	}
	if !p.Frugal || p.First < 11*time.Second || p.First > 21*time.Second {
		t.Errorf("scarce: %+v, want a frugal plan, the first check about 15 s after the submit", p)
	}
	scarce = false
	if p := l.CheckDelays(ctx, w); p.Frugal || p.First != 2*time.Second {
		t.Errorf("not scarce: %+v, want the prompt schedule, untaught (2 s)", p)
	}
}

// A new integration's schedule is found in a few checks: the first steps
// are long. Ten writes that take 12 s each bring the first check from 2 s
// to near 12 s (steps of the smallest size would have reached 4.5 s).
func TestANewScheduleIsLearnedInAFewChecks(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{})
	w := integration("new")
	simulate(l, w, 10, func() time.Duration { return 12 * time.Second })
	if first := l.CheckDelays(context.Background(), w).First; first < 8*time.Second || first > 18*time.Second {
		t.Errorf("after 10 writes of 12 s, the first check at %v, want about 12 s", first)
	}
}

// An integration not seen yet starts from what its vendor's others taught,
// and learns on from there in small steps; one of another vendor, or of
// none, starts from the defaults.
func TestANewIntegrationStartsFromItsVendor(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{})
	ctx := context.Background()
	seen := poll.Writes{IntegrationID: "int_a", Vendor: "rentmanager"}
	simulate(l, seen, 300, func() time.Duration { return 12 * time.Second })
	learned := l.CheckDelays(ctx, seen).First
	fresh := poll.Writes{IntegrationID: "int_b", Vendor: "rentmanager"}
	if p := l.CheckDelays(ctx, fresh); math.Abs(p.First.Seconds()/learned.Seconds()-1) > 0.2 {
		t.Errorf("a new integration of the vendor: first check at %v, want about the vendor's %v", p.First, learned)
	}
	l.Observe(ctx, fresh, 1, false, false)
	if first := l.CheckDelays(ctx, fresh).First; first.Seconds() < 0.95*learned.Seconds() {
		t.Errorf("one resolved check moved the new integration's first check from about %v to %v: a long step from a start that is known", learned, first)
	}
	for _, other := range []poll.Writes{{IntegrationID: "int_c", Vendor: "yardi"}, integration("int_d")} {
		if p := l.CheckDelays(ctx, other); p.First != 2*time.Second {
			t.Errorf("%+v: first check at %v, want the default 2 s", other, p.First)
		}
	}
}

func TestBounds(t *testing.T) {
	l := poll.New(redistest.Client(t), poll.Config{Min: time.Second, Max: 10 * time.Second})
	ctx := context.Background()
	for i := 0; i < 500; i++ {
		l.Observe(ctx, integration("never"), 1, false, true)
		l.Observe(ctx, integration("instant"), 1, false, false)
	}
	if first := l.CheckDelays(ctx, integration("never")).First; first != 10*time.Second {
		t.Errorf("writes that never resolve: first check at %v, want the 10s cap", first)
	}
	if first := l.CheckDelays(ctx, integration("instant")).First; first != time.Second {
		t.Errorf("instant writes: first check at %v, want the 1s floor", first)
	}
}

// With Batch, the observations of a batch land in Redis at most once per
// Batch, as at most 5 steps, and learn the same thing.
func TestBatchSumsObservations(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	l := poll.New(rdb, poll.Config{Batch: 200 * time.Millisecond, Key: "poll:batch"})
	w := integration("int")
	l.Observe(ctx, w, 1, false, true) // the first lands at once: a step of 1·0.8
	after1, _ := rdb.HGet(ctx, "poll:batch", "int:1").Float64()
	if want := math.Log(2) + 0.8; math.Abs(after1-want) > 1e-9 {
		t.Fatalf("after the first observation: %v, want %v", after1, want)
	}
	for range 20 {
		l.Observe(ctx, w, 1, false, true)
	}
	if v, _ := rdb.HGet(ctx, "poll:batch", "int:1").Float64(); v != after1 {
		t.Fatalf("observations inside a batch reached Redis: %v, then %v", after1, v)
	}
	first := l.CheckDelays(ctx, w).First
	time.Sleep(250 * time.Millisecond)
	l.Observe(ctx, w, 1, false, true) // the batch is due: 21 observations make 5 steps of the second's size, 1/√2
	v, _ := rdb.HGet(ctx, "poll:batch", "int:1").Float64()
	if want := after1 + 5*0.8/math.Sqrt2; math.Abs(v-want) > 1e-9 {
		t.Errorf("after the batch: %v, want %v", v, want)
	}
	if again := l.CheckDelays(ctx, w).First; again <= first {
		t.Errorf("the schedule did not move later after PENDING checks: %v, then %v", first, again)
	}

	// Learning with batches converges as without: here 10 checks a batch,
	// on a clock the test moves, so the batches do not depend on the
	// machine's speed. A batch of 10 alike (every check PENDING, or none)
	// makes the delay swing around 3 s: its median over the last 50
	// batches is what is learned.
	now := time.Now()
	batched := poll.New(rdb, poll.Config{Batch: time.Millisecond, Key: "poll:batch2", Now: func() time.Time { return now }})
	fast := integration("fast")
	var last []time.Duration
	for i := range 150 {
		for range 10 {
			first := batched.CheckDelays(ctx, fast).First
			batched.Observe(ctx, fast, 1, false, 3*time.Second > first)
		}
		now = now.Add(2 * time.Millisecond)
		if i >= 100 {
			last = append(last, batched.CheckDelays(ctx, fast).First)
		}
	}
	slices.Sort(last)
	if median := last[len(last)/2]; median < 2700*time.Millisecond || median > 4500*time.Millisecond {
		t.Errorf("batched learning put the first check at %v (the median of the last 50 batches) for writes that take 3s", median)
	}
}
