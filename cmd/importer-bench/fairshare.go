package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// fairshare: imports sharing one API account at 600 requests a minute. A
// 100-row import alone; then the same beside a 20,000-row import started
// first (time to its first resolved row and to its end, against alone); then
// three 2,000-row imports started together, each one's share of the creates
// in every 2-minute span. And the 429s the sandbox answered.
func fairshare(h *harness) ([]figure, error) {
	const limit, window = 600, time.Minute
	s, err := h.newStack(stackConfig{latency: "uniform:200ms-1s", sandboxLimit: limit, workerLimit: limit, workers: 2, concurrency: 16})
	if err != nil {
		return nil, err
	}
	defer s.close()
	st := store.New(s.redis.rdb)
	files := map[string]string{}
	for _, f := range []struct {
		name string
		rows int
	}{{"solo", 100}, {"small", 100}, {"big", h.size(20000)}, {"third-a", h.size(2000)}, {"third-b", h.size(2000)}, {"third-c", h.size(2000)}} {
		files[f.name] = filepath.Join(h.dir, "fair-"+f.name+".csv")
		if err := writeResidents(files[f.name], f.rows, "fair"+f.name); err != nil {
			return nil, err
		}
	}
	start := func(name string) error {
		_, err := s.command(2*time.Minute, s.runArgs(files[name], "fair-"+name, "--no-wait", "--mode", "create")...)
		return err
	}
	follow := func(id string, began time.Time, timeout time.Duration) (first, end time.Duration, err error) {
		ctx := context.Background()
		for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
			p, perr := st.Progress(ctx, id)
			if perr == nil && first == 0 && p.Resolved > 0 {
				first = time.Since(began)
			}
			if imp, ierr := st.Import(ctx, id); ierr == nil && imp.Finished() {
				return first, time.Since(began), nil
			}
			if time.Now().After(deadline) {
				return first, 0, fmt.Errorf("%s not finished after %v: %+v", id, timeout, p)
			}
		}
	}

	began := time.Now()
	if err := start("solo"); err != nil {
		return nil, err
	}
	soloFirst, soloEnd, err := follow("fair-solo", began, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	if err := start("big"); err != nil {
		return nil, err
	}
	time.Sleep(30 * time.Second) // the big import is under way
	began = time.Now()
	if err := start("small"); err != nil {
		return nil, err
	}
	smallFirst, smallEnd, err := follow("fair-small", began, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	if _, err := s.command(2*time.Minute, "cancel", "fair-big", "--report-dir", h.dir+"/reports"); err != nil {
		return nil, err
	}
	h.say("fairshare: a 100-row import alone: first row %v, done %v; beside a %d-row import: %v, %v",
		soloFirst.Round(time.Millisecond), soloEnd.Round(time.Millisecond), h.size(20000), smallFirst.Round(time.Millisecond), smallEnd.Round(time.Millisecond))
	// Let the big import's rows in flight drain before the next part.
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
		if imp, err := st.Import(context.Background(), "fair-big"); err != nil || imp.Finished() || time.Now().After(deadline) {
			break
		}
	}

	// Three imports started together (three commands at once, as three
	// schedules firing at the same minute): each one's creates, every 10 s.
	thirds := []string{"third-a", "third-b", "third-c"}
	var g errgroup.Group
	for _, name := range thirds {
		g.Go(func() error { return start(name) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	const every, span = 10 * time.Second, 2 * time.Minute
	sample := func() []int {
		out := make([]int, len(thirds))
		for i, name := range thirds {
			stats, _ := st.Stats(context.Background(), "fair-"+name)
			out[i] = stats[importer.StatRequests(importer.EndpointCreate)]
		}
		return out
	}
	samples := [][]int{sample()}
	sampleFor := h.sizeDuration(6 * time.Minute)
	for end := time.Now().Add(sampleFor); time.Now().Before(end); {
		time.Sleep(every)
		samples = append(samples, sample())
	}
	for _, name := range thirds {
		if _, err := s.command(2*time.Minute, "cancel", "fair-"+name, "--report-dir", h.dir+"/reports"); err != nil {
			return nil, err
		}
	}
	// The worst share of any import over any 2-minute span, as a share of
	// a third: over every span, and over the spans that start once the
	// three have been feeding for 30 s (the first import's head start
	// behind them).
	step := int(span / every)
	worstFrom := func(first int) float64 {
		worst := 0.0
		for i := first; i+step < len(samples); i++ {
			total := 0
			for k := range thirds {
				total += samples[i+step][k] - samples[i][k]
			}
			if total == 0 {
				continue
			}
			for k := range thirds {
				off := float64(samples[i+step][k]-samples[i][k])/float64(total)*3 - 1
				worst = max(worst, off, -off)
			}
		}
		return worst
	}
	worst, settled := worstFrom(0), worstFrom(int(30*time.Second/every))
	stats, err := s.stats()
	if err != nil {
		return nil, err
	}
	h.say("fairshare: three imports together, the farthest from a third over any 2-minute span: %.1f%% (%.1f%% from 30 s on); %d answers 429", 100*worst, 100*settled, stats.RateLimited)
	return []figure{
		measured("a 100-row import alone: its first resolved row", "s", soloFirst.Seconds()),
		measured("a 100-row import alone: done", "s", soloEnd.Seconds()),
		// The big import's queued rows (jobs.DefaultAhead of budget,
		// taking about twice as long with their checks), then its own
		// create and check.
		atMostFig("beside a 20,000-row import: its first resolved row", "s", 2*jobs.DefaultAhead.Seconds()+10, smallFirst.Seconds()),
		atMostFig("beside a 20,000-row import: done (goal: 2× alone + one rate window)", "s", 2*soloEnd.Seconds()+window.Seconds(), smallEnd.Seconds()),
		atMostFig("three imports together: farthest from a third of the creates over any 2-minute span", "%", 10, 100*worst),
		measured("the same, over the spans from 30 s after they started", "%", 100*settled),
		atMostFig("answers 429", "", 0, float64(stats.RateLimited)),
	}, nil
}
