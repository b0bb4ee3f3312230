package jobs_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/ratelimit"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/jobs"
)

// shareEnv is three workers on one Redis sharing a rate limit of limit
// requests per window, against the sandbox, with the feeds keeping ahead's
// budget queued.
func shareEnv(t *testing.T, limit int, window, ahead time.Duration) *env {
	t.Helper()
	lat, _ := sandbox.ParseLatency("fixed:100ms")
	// The workers' limiter is the only pace: the sandbox allows far more.
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: 100 * limit, RateWindow: window})
	e := envOn(t, redistestClient(t))
	e.sandbox = sb
	for range 3 {
		limiter := ratelimit.New(e.rdb, ratelimit.Config{Limit: limit, Period: window, Max: limit})
		api, err := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey, OnAnswer: limiter.Observe})
		if err != nil {
			t.Fatal(err)
		}
		e.api = api
		e.h = jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: 300 * time.Millisecond, PollMax: time.Second,
			Limiter: limiter, Ahead: ahead})
		mux := asynq.NewServeMux()
		e.h.Register(mux)
		cfg := jobs.ServerConfig(8, nil)
		cfg.LogLevel = asynq.FatalLevel
		cfg.ErrorHandler = e.h
		s := asynq.NewServerFromRedisClient(e.rdb, cfg)
		if err := s.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
	}
	return e
}

// startRows starts an import of n fresh residents (tag keeps its content
// its own) with a priority, and returns its id.
func (e *env) startRows(t *testing.T, tag string, n int, priority importer.Priority) string {
	t.Helper()
	ctx := context.Background()
	opts := mustNormalize(t, importer.Options{Mode: importer.ModeCreate, Priority: priority})
	id := fmt.Sprintf("imp-%s", tag)
	imp, _, err := e.store.CreateImport(ctx, importer.Import{ID: id, File: tag + ".csv", CreatedAt: time.Now().UTC(), Total: -1, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.commands().Split(ctx, imp, &taggedRows{tag: tag, n: n}); err != nil {
		t.Fatal(err)
	}
	return id
}

// A small import started while a big one runs gets its first rows sent
// within seconds, and half the budget from then on, instead of waiting
// behind the big one's queued rows (800 rows here, minutes of budget): every
// import feeding rows keeps only its share of the budget queued ahead. How
// long each takes, beside the other and alone, is measured at full size by
// 'make bench' (the fairshare scenario): the tail of a short import is
// timing, not share.
func TestASmallImportIsNotStuckBehindABigOne(t *testing.T) {
	t.Parallel()
	// 10 requests a second for all workers, in windows of 12 s; 2 s of it
	// queued ahead.
	const limit, window, ahead = 120, 12 * time.Second, 2 * time.Second
	e := shareEnv(t, limit, window, ahead)
	ctx := context.Background()
	creates := func(id string) int {
		st, _ := e.store.Stats(ctx, id)
		return st[importer.StatRequests(importer.EndpointCreate)]
	}

	big := e.startRows(t, "big", 800, "")
	waitFor(t, 30*time.Second, "the big import under way", func() bool { return creates(big) >= 5 })
	start := time.Now()
	small := e.startRows(t, "small", 40, "")
	var first time.Duration
	var smallFrom, bigFrom int
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the small import has %d creates after 60 s", creates(small))
		}
		n := creates(small)
		if first == 0 && n > 0 {
			first = time.Since(start)
		}
		if smallFrom == 0 && n >= 5 {
			smallFrom, bigFrom = n, creates(big)
		}
		if n >= 35 {
			got := float64(n-smallFrom) / float64(n-smallFrom+creates(big)-bigFrom)
			t.Logf("the small import's first create after %v; then %.0f%% of the creates", first.Round(time.Millisecond), 100*got)
			// Stuck behind the big one, it would get next to nothing; a fair
			// share is half. A third is the bound: on a loaded 2-core machine
			// (every package's tests at once) 39% was seen, once in many runs.
			if got < 1.0/3 {
				t.Errorf("the small import got %.0f%% of the creates beside the big one, want half (at least a third)", 100*got)
			}
			break
		}
	}
	if first > 2*ahead+3*time.Second {
		t.Errorf("the small import's first create came after %v, want within seconds", first)
	}
	if p, _ := e.store.Progress(ctx, big); p.Resolved >= p.Total {
		t.Errorf("the big import ended first: the test measured nothing")
	}
	e.commands().Cancel(ctx, big)
}

// taggedRows yields n valid residents whose names carry tag.
type taggedRows struct {
	tag  string
	n, i int
}

func (f *taggedRows) Next() (importer.Row, error) {
	row, err := (&fakeRows{n: f.n, i: f.i}).Next()
	if err != nil {
		return row, err
	}
	f.i++
	for i, c := range row.Columns {
		if c.Name == "last_name" || c.Name == "email_1" {
			row.Columns[i].Value = f.tag + c.Value
			row.Values[c.Name] = row.Columns[i].Value
		}
	}
	return row, nil
}

func (f *taggedRows) Columns() []string        { return fakeHeader }
func (f *taggedRows) UnknownColumns() []string { return nil }
func (f *taggedRows) IgnoredColumns() []string { return nil }
func (f *taggedRows) CheckColumns() error      { return nil }

// Imports started together share the budget by weight, whatever their
// sizes: one of high priority gets twice a normal one's share.
func TestImportsShareTheBudgetByWeight(t *testing.T) {
	t.Parallel()
	const limit, window, ahead = 120, 6 * time.Second, time.Second // 20 a second
	e := shareEnv(t, limit, window, ahead)
	ctx := context.Background()
	imports := []struct {
		tag      string
		rows     int
		priority importer.Priority
		share    float64
	}{
		// The high-priority one is started last: in arrival order it
		// would get nothing while the others' rows are queued.
		{"first", 400, "", 0.25},
		{"second", 300, "", 0.25},
		{"urgent", 400, importer.PriorityHigh, 0.5},
	}
	ids := make([]string, len(imports))
	for i, imp := range imports {
		ids[i] = e.startRows(t, imp.tag, imp.rows, imp.priority)
	}
	creates := func() []int {
		out := make([]int, len(ids))
		for i, id := range ids {
			st, _ := e.store.Stats(ctx, id)
			out[i] = st[importer.StatRequests(importer.EndpointCreate)]
		}
		return out
	}
	waitFor(t, 30*time.Second, "every import sending", func() bool { return !slices.Contains(creates(), 0) })
	// A sample of a fixed size, however loaded the machine: 200 creates
	// take 10 s at the limit, longer under the whole suite's load.
	before := creates()
	const sample = 200
	waitFor(t, 60*time.Second, "200 creates within a minute: the budget went unused", func() bool {
		n := 0
		for i, c := range creates() {
			n += c - before[i]
		}
		return n >= sample
	})
	after := creates()
	total := 0
	got := make([]float64, len(ids))
	for i := range ids {
		total += after[i] - before[i]
	}
	for i, imp := range imports {
		got[i] = float64(after[i]-before[i]) / float64(total)
		t.Logf("%s: %d of %d creates (%.0f%%, its share %.0f%%)", imp.tag, after[i]-before[i], total, 100*got[i], 100*imp.share)
	}
	// The high-priority import well ahead of each normal one: 49% measured
	// alone, for its 50%. Under the whole suite's load on 2 cores the
	// workers fall below the rate limit, the limiter no longer paces them,
	// and the shares come from the mix of rows queued ahead: 42% was seen
	// then, against 33% and 24%, so the bound is 1.25 times each normal
	// import's share, which an import served by arrival order (nothing
	// while the others' rows are queued) or alike (a third) still fails.
	if got[2] < 1.25*got[0] || got[2] < 1.25*got[1] || got[2] < 0.38 {
		t.Errorf("the high-priority import got %.0f%% of the creates, the normal ones %.0f%% and %.0f%%: want about twice as much", 100*got[2], 100*got[0], 100*got[1])
	}
	// Alike within the noise of the sample: about 100 creates between the
	// two, whose difference wanders by about ±√100 = 10 from one run to the
	// next; twice that still fails an import served at half its share, or
	// starved.
	a, b := float64(after[0]-before[0]), float64(after[1]-before[1])
	if math.Abs(a-b) > 2*math.Sqrt(a+b) {
		t.Errorf("the two normal imports got %.0f%% and %.0f%% of the creates, want alike", 100*got[0], 100*got[1])
	}
	for _, id := range ids {
		e.commands().Cancel(ctx, id)
	}
}
