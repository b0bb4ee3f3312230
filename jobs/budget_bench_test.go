package jobs_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/poll"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/ratelimit"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/internal/webhook"
	"github.com/propexo-importer/importer/jobs"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkAPIBudget imports rows through three workers against the
// sandbox with the API's rate limit (150 a minute) and its latency
// (log-normal, median 2s, p99 30s), and reports how well the budget was
// spent: polling; with webhooks whose DATA_NEW carries the write's job id,
// a sync job's id (matched to its write by the record's email), or never
// comes (the fallback poll ends every row); and with contracts of 60 and
// 600 a minute that the workers are not told of (they follow the
// x-ratelimit-limit of the answers), the latter also with windows that
// start 23 s after the clock's minute (the workers learn where). Time runs IMPORTER_BENCH_SCALE times
// faster than the API's (window, latency and delays divided alike; default
// 4); IMPORTER_BENCH_ROWS sets the rows (default 1000; the 60-a-minute
// contract takes a third of them). Run it with `make bench-api`.
func BenchmarkAPIBudget(b *testing.B) {
	rows := envInt("IMPORTER_BENCH_ROWS", 1000)
	scale := time.Duration(envInt("IMPORTER_BENCH_SCALE", 4))
	for _, run := range []budget{
		{name: "polling", rows: rows, limit: 150},
		{name: "webhooks/data_new=write", rows: rows, limit: 150, dataNew: sandbox.DataNewWrite},
		{name: "webhooks/data_new=sync", rows: rows, limit: 150, dataNew: sandbox.DataNewSync},
		{name: "webhooks/data_new=none", rows: rows, limit: 150, dataNew: sandbox.DataNewNone},
		{name: "contract=60", rows: rows / 3, limit: 60},
		{name: "contract=600", rows: rows, limit: 600},
		// The docs do not say where a window starts: the same contract
		// with windows starting 23 s after the clock's minute must use the
		// same share of its allowance.
		{name: "contract=600/offset=23s", rows: rows, limit: 600, offset: 23 * time.Second},
	} {
		b.Run(run.name, func(b *testing.B) {
			for b.Loop() {
				budgetRun(b, run, scale)
			}
		})
	}
}

// budget is one run of BenchmarkAPIBudget: its rows, the API's limit a
// minute, and, with webhooks, what DATA_NEW's root_job_id carries.
type budget struct {
	name    string
	rows    int
	limit   int
	dataNew string // "" polls
	// offset is where the API's windows start after the clock's minute
	// (in the API's time: scaled with the window).
	offset time.Duration
}

func budgetRun(b *testing.B, run budget, scale time.Duration) {
	ctx := context.Background()
	rows, hooks := run.rows, run.dataNew != ""
	rdb := redistest.Client(b)
	window := time.Minute / scale
	lat, _ := sandbox.ParseLatency(fmt.Sprintf("lognormal:median=%v,p99=%v", 2*time.Second/scale, 30*time.Second/scale))
	cfg := sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: run.limit, RateWindow: window, RateWindowOffset: run.offset / scale, SlowDelay: 2 * time.Second / scale, Seed: 11,
		Variants: sandbox.Variants{DataNew: run.dataNew}}
	e := envOn(b, rdb)
	jcfg := jobs.Config{MaxRetry: 10}
	if hooks {
		probe := jobs.NewImports(nil, e.store, e.queue, e.reports, nil, jobs.Config{})
		rc, _ := webhook.NewReceiver(whSecret, probe.ApplyEvent, nil)
		srv := httptest.NewServer(rc)
		b.Cleanup(srv.Close)
		cfg.Webhooks = sandbox.WebhookConfig{URL: srv.URL, Secret: whSecret}
		jcfg.PollFallback = 5 * time.Minute / scale
	}
	sb, api := sandboxtest.Serve(b, cfg)
	sb.Start()

	imp := e.newImport(b, "bench", -1, importer.Options{})
	for i := 0; i < 3; i++ {
		// Told nothing: 150 until the API announces its own limit.
		limiter := ratelimit.New(rdb, ratelimit.Config{Period: window})
		client, _ := propexo.New(propexo.Config{BaseURL: api.URL, APIKey: apiKey, OnAnswer: limiter.Observe})
		c := jcfg
		c.Limiter = limiter
		c.Planner = poll.New(rdb, poll.Config{Initial: 2 * time.Second / scale, Max: 5 * time.Minute / scale, Scarce: limiter.Scarce})
		h := jobs.NewImports(client, e.store, e.queue, e.reports, nil, c)
		mux := asynq.NewServeMux()
		h.Register(mux)
		scfg := jobs.ServerConfig(10, nil)
		scfg.LogLevel = asynq.FatalLevel
		server := asynq.NewServerFromRedisClient(rdb, scfg)
		if err := server.Start(mux); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(server.Shutdown)
	}
	began := time.Now()
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		b.Fatal(err)
	}
	for {
		if got, _ := e.store.Import(ctx, imp.ID); got.Finished() {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(began)
	st := sb.Stats()
	requests := 0
	for _, n := range st.Requests {
		requests += n
	}
	twice := 0
	for _, n := range st.ResidentsByIdentity {
		if n > 1 {
			twice++
		}
	}
	p, _ := e.store.Progress(ctx, imp.ID)
	if p.Counts[importer.Succeeded] != rows || twice != 0 {
		b.Errorf("%s: %d of %d rows succeeded, %d residents created twice", run.name, p.Counts[importer.Succeeded], rows, twice)
	}
	windows := took.Seconds() / window.Seconds()
	steady, used := steadyUse(st.Windows)
	b.ReportMetric(100*steady/float64(run.limit), "%limit-steady")
	b.ReportMetric(float64(requests)/float64(p.Resolved), "requests/row")
	b.ReportMetric(float64(st.Requests["write_status"])/float64(p.Resolved), "reads/row")
	b.ReportMetric(100*float64(requests)/(windows*float64(run.limit)), "%limit")
	b.ReportMetric(float64(st.RateLimited), "429s")
	b.ReportMetric(float64(twice), "created-twice")
	b.ReportMetric(float64(p.Resolved)/(took.Minutes()*float64(scale)), "rows/api-min")
	b.Logf("%s: %d rows in %v (%.0f windows of %v): %d requests (%d creates, %d status reads), %d answers 429, %d slowed, %d residents created twice; requests of the windows while creates were sent: %v",
		run.name, p.Resolved, took.Round(time.Second), windows, window, requests, st.Requests["create_resident"], st.Requests["write_status"], st.RateLimited, st.Slowed, twice, used)
}

// steadyUse is the mean of the requests the API counted in the windows of
// an import's steady state: the windows in which creates were sent, but
// not the first (the workers learn the limit and where windows start) nor
// the last (the rows run out). It returns the requests of every window
// that had creates too, for the log.
func steadyUse(windows []sandbox.WindowUse) (float64, []int) {
	var used []int
	for _, w := range windows {
		if w.Creates > 0 {
			used = append(used, w.Requests)
		}
	}
	if len(used) < 3 {
		return 0, used
	}
	sum := 0
	for _, n := range used[1 : len(used)-1] {
		sum += n
	}
	return float64(sum) / float64(len(used)-2), used
}
