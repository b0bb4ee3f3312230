package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/source"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// pipelineWorkers and pipelineConcurrency are the worker processes (Asynq
// servers) and the slots of each, in the pipeline and scale scenarios, for
// the importer and the floor alike.
const (
	pipelineWorkers     = 2
	pipelineConcurrency = 16
)

// pipeline: rows per second end to end at latency 0 and no rate limit,
// beside the bare Asynq floor measured in the same run.
func pipeline(h *harness) ([]figure, error) {
	rows := h.size(20000)
	file := filepath.Join(h.dir, "pipeline.csv")
	if err := writeResidents(file, rows, "p"); err != nil {
		return nil, err
	}
	var imp, floor, ratio, impCPU, floorCPU []float64
	for i := range h.repeat {
		cfg := stackConfig{latency: "fixed:0s", sandboxLimit: -1, workers: pipelineWorkers, concurrency: pipelineConcurrency,
			workerArgs: []string{"--poll-initial", "1s"}}
		if h.profile != "" && i == 0 {
			cfg.profile = filepath.Join(h.profile, "worker")
		}
		s, err := h.newStack(cfg)
		if err != nil {
			return nil, err
		}
		r, err := s.importFile(file, "pipeline-"+strconv.Itoa(i), 10*time.Minute)
		if err == nil {
			err = s.expectCreates(rows)
		}
		s.close()
		if err != nil {
			return nil, err
		}
		h.say("pipeline run %d: %.1fs; CPU seconds: run %.1f, workers %.1f, sandbox %.1f, redis %.1f", i+1, r.elapsed.Seconds(), r.cpu, s.cpu["workers"], s.cpu["sandbox"], s.cpu["redis"])
		impCPU = append(impCPU, (r.cpu+s.cpu["workers"]+s.cpu["sandbox"]+s.cpu["redis"])/float64(rows)*1e6)
		rs, err := h.startRedis()
		if err != nil {
			return nil, err
		}
		before := selfCPU()
		d, err := bareAsynqFloor(rs.rdb, rows, pipelineWorkers, pipelineConcurrency, time.Second)
		harnessCPU := selfCPU() - before
		rs.close()
		h.say("pipeline run %d: floor %.1fs; CPU seconds: servers %.1f, redis %.1f", i+1, d.Seconds(), harnessCPU, rs.proc.cpuSeconds())
		floorCPU = append(floorCPU, (harnessCPU+rs.proc.cpuSeconds())/float64(rows)*1e6)
		if err != nil {
			return nil, err
		}
		ir, fr := float64(rows)/r.elapsed.Seconds(), float64(rows)/d.Seconds()
		h.say("pipeline run %d: importer %.0f rows/s, bare Asynq %.0f rows/s", i+1, ir, fr)
		imp, floor, ratio = append(imp, ir), append(floor, fr), append(ratio, ir/fr)
	}
	return []figure{
		measured("importer, end to end ("+strconv.Itoa(rows)+" rows)", "rows/s", imp...),
		measured("bare Asynq floor (submit + delayed check)", "rows/s", floor...),
		atLeastFig("importer / floor", "×", 0.6, ratio...),
		measured("importer CPU per row, every process (run, workers, sandbox, Redis)", "µs", impCPU...),
		measured("floor CPU per row (servers, Redis)", "µs", floorCPU...),
	}, nil
}

// expectCreates checks that the API saw one create per row.
func (s *stack) expectCreates(rows int) error {
	st, err := s.stats()
	if err != nil {
		return err
	}
	if st.Creates != rows {
		return fmt.Errorf("the sandbox saw %d creates for %d rows", st.Creates, rows)
	}
	return nil
}

// waiting: 500 rows whose writes take 2 s, 20 worker slots, beside a
// blocking importer with 20 goroutines.
func waiting(h *harness) ([]figure, error) {
	rows := h.size(500)
	file := filepath.Join(h.dir, "waiting.csv")
	baseFile := filepath.Join(h.dir, "waiting-baseline.csv")
	if err := writeResidents(file, rows, "w"); err != nil {
		return nil, err
	}
	if err := writeResidents(baseFile, rows, "b"); err != nil {
		return nil, err
	}
	var imp, hooked, base []float64
	for i := range h.repeat {
		// With webhooks, beside: no status read waits for its second.
		s, err := h.newStack(stackConfig{latency: "fixed:2s", sandboxLimit: -1, workers: 1, concurrency: 20, webhooks: true})
		if err != nil {
			return nil, err
		}
		r, err := s.importFile(file, "waiting-hooks-"+strconv.Itoa(i), 5*time.Minute)
		s.close()
		if err != nil {
			return nil, err
		}
		hooked = append(hooked, r.elapsed.Seconds())
		s, err = h.newStack(stackConfig{latency: "fixed:2s", sandboxLimit: -1, workers: 1, concurrency: 20})
		if err != nil {
			return nil, err
		}
		r, err = s.importFile(file, "waiting-"+strconv.Itoa(i), 5*time.Minute)
		if err == nil {
			err = s.expectCreates(rows)
		}
		if err != nil {
			s.close()
			return nil, err
		}
		imp = append(imp, r.elapsed.Seconds())
		h.say("waiting run %d: importer %.2fs", i+1, r.elapsed.Seconds())
		// The baseline's run takes about a minute: it runs once, against
		// the first run's sandbox.
		if i == 0 {
			d, err := blockingImport(baseFile, s.sandboxURL, 20)
			if err != nil {
				s.close()
				return nil, err
			}
			base = append(base, d.Seconds())
			h.say("waiting: blocking baseline %.1fs", d.Seconds())
		}
		s.close()
	}
	speedup := make([]float64, len(imp))
	for i, t := range imp {
		speedup[i] = base[0] / t
	}
	return []figure{
		measured("importer ("+strconv.Itoa(rows)+" rows, writes take 2 s, 20 slots)", "s", imp...),
		measured("blocking baseline (POST, poll every 1 s, 20 goroutines)", "s", base...),
		atLeastFig("speed-up over the blocking baseline", "×", 15, speedup...),
		measured("importer with webhooks (same rows, same worker)", "s", hooked...),
	}, nil
}

// budget: requests per resolved row, polling and with webhooks, and the
// share of a 600-a-minute limit three worker processes use in 2 minutes;
// polling again with the API's windows starting 23 s after the clock's
// minute (the docs do not say where they start: the workers learn it), which
// must use the same share. The three run at once, each on its own stack.
func budget(h *harness) ([]figure, error) {
	window := time.Duration(float64(2*time.Minute) * h.scale)
	type outcome struct {
		perRow, share, reads float64
		r429                 int
		err                  error
	}
	modes := []struct {
		name     string
		webhooks bool
		rows     int
		offset   time.Duration
	}{{"polling", false, h.size(1600), 0}, {"webhooks", true, h.size(1600), 0}, {"polling-offset", false, h.size(1600), 23 * time.Second}}
	out := make([]outcome, len(modes))
	var wg sync.WaitGroup
	for i, m := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := &out[i]
			o.perRow, o.share, o.reads, o.r429, o.err = budgetRun(h, m.name, m.webhooks, m.rows, window, m.offset)
		}()
	}
	wg.Wait()
	for i, o := range out {
		if o.err != nil {
			return nil, fmt.Errorf("%s: %w", modes[i].name, o.err)
		}
	}
	return []figure{
		atMostFig("API requests per resolved row, polling", "req/row", 2.1, out[0].perRow),
		measured("status reads per resolved row, polling", "req/row", out[0].reads),
		atMostFig("API requests per resolved row, webhooks", "req/row", 1.1, out[1].perRow),
		atLeastFig("share of 600 req/min used by 3 workers over 2 min, polling", "", 0.95, out[0].share),
		atLeastFig("share of 600 req/min used by 3 workers over 2 min, webhooks", "", 0.95, out[1].share),
		atLeastFig("share of 600 req/min used by 3 workers over 2 min, polling, windows from :23", "", 0.95, out[2].share),
		atMostFig("API requests per resolved row, polling, windows from :23", "req/row", 2.1, out[2].perRow),
		atMostFig("answers 429", "", 0, float64(out[0].r429+out[1].r429+out[2].r429)),
	}, nil
}

// budgetRun imports a file bigger than 2 minutes of the limit, measures the
// requests of the first 2 minutes after the first create, then cancels the
// import and lets the rows sent resolve.
func budgetRun(h *harness, name string, webhooks bool, rows int, window, offset time.Duration) (perRow, share, reads float64, r429 int, err error) {
	const limit = 600
	file := filepath.Join(h.dir, "budget-"+name+".csv")
	if err := writeResidents(file, rows, name[:1]); err != nil {
		return 0, 0, 0, 0, err
	}
	// Start the workers and the import a few seconds into a window from
	// :23, so the clock's minute falls inside it (where taking windows to
	// start on the clock's minute costs most) and the workers see no new
	// window before it: every run of the scenario starts there.
	time.Sleep(untilSecond(time.Now(), 25*time.Second))
	s, err := h.newStack(stackConfig{latency: "lognormal:median=2s,p99=30s", sandboxLimit: limit, workerLimit: limit,
		workers: 3, concurrency: 10, webhooks: webhooks, sandboxArgs: []string{"--rate-window-offset", offset.String()}})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer s.close()
	before, err := s.stats()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	id := "budget-" + name
	p, err := s.startRun(file, id)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	var atStart int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		st, err := s.stats()
		if err == nil && st.Creates > before.Creates {
			atStart = requests(st) - 1
			break
		}
		if time.Now().After(deadline) {
			p.stop()
			return 0, 0, 0, 0, fmt.Errorf("no create reached the API within a minute (see %s)", p.log)
		}
	}
	time.Sleep(window)
	st, err := s.stats()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	share = float64(requests(st)-atStart) / (limit * window.Minutes())
	h.say("budget %s: %d requests in %s; the windows that ended: %s", name, requests(st)-atStart, window, windowsOf(st))
	if _, err := s.command(time.Minute, "cancel", id); err != nil {
		p.stop()
		return 0, 0, 0, 0, err
	}
	if err := p.wait(5 * time.Minute); err != nil {
		var exit interface{ ExitCode() int }
		if !errors.As(err, &exit) || exit.ExitCode() != 1 { // a cancelled import exits 1
			return 0, 0, 0, 0, err
		}
	}
	st, err = s.stats()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	sent := st.Creates - before.Creates
	if sent == 0 {
		return 0, 0, 0, 0, errors.New("no row was sent")
	}
	perRow = float64(requests(st)-requests(before)) / float64(sent)
	reads = float64(st.Requests["write_status"]-before.Requests["write_status"]) / float64(sent)
	h.say("budget %s: %d rows sent, %.3f requests each, %d answers 429", name, sent, perRow, st.RateLimited)
	return perRow, share, reads, st.RateLimited, nil
}

// untilSecond is the wait from now to the next time at sec past the
// clock's minute.
func untilSecond(now time.Time, sec time.Duration) time.Duration {
	next := now.Truncate(time.Minute).Add(sec)
	if !next.After(now) {
		next = next.Add(time.Minute)
	}
	return next.Sub(now)
}

// scale: a million-row file read and validated, split into Redis and
// queued; then a 200,000-row import end to end, with every process's peak
// memory and Redis's.
func scale(h *harness) ([]figure, error) {
	big := h.size(1_000_000)
	file := filepath.Join(h.dir, "scale-1m.csv")
	if err := writeResidents(file, big, "m"); err != nil {
		return nil, err
	}
	var readRates []float64
	for range h.repeat {
		d, n, err := readAndValidate(file)
		if err != nil {
			return nil, err
		}
		if n != big {
			return nil, fmt.Errorf("read %d rows of %d", n, big)
		}
		readRates = append(readRates, float64(n)/d.Seconds())
	}
	h.say("scale: read and validated %d rows at %.0f rows/s", big, median(readRates))

	splitRate, enqueueRate, storedPerRow, err := splitAndQueue(h, file, big)
	if err != nil {
		return nil, err
	}

	rows := h.size(200_000)
	file2 := filepath.Join(h.dir, "scale-200k.csv")
	if err := writeResidents(file2, rows, "s"); err != nil {
		return nil, err
	}
	s, err := h.newStack(stackConfig{latency: "fixed:0s", sandboxLimit: -1, workers: pipelineWorkers, concurrency: pipelineConcurrency,
		workerArgs: []string{"--poll-initial", "1s"}})
	if err != nil {
		return nil, err
	}
	base := s.redis.memory("used_memory")
	// A first load, create-only: the figures are the import's own memory;
	// what a sync keeps for good (its ledger) is measured in nightly.
	r, err := s.importFile(file2, "scale", 30*time.Minute, "--mode", "create")
	if err == nil {
		err = s.expectCreates(rows)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	peak := s.redis.memory("used_memory_peak")
	rep, err := s.command(5*time.Minute, "report", "scale", "--report-dir", filepath.Join(h.dir, "report-again"))
	workersRSS := s.close()
	if err != nil {
		return nil, err
	}
	h.say("scale: %d rows imported in %.1fs", rows, r.elapsed.Seconds())
	n := strconv.Itoa(rows)
	return []figure{
		atLeastFig("read and validate a 1,000,000-row CSV", "rows/s", 200_000, readRates...),
		measured("split it into Redis (read, validate, store compactly)", "rows/s", splitRate),
		measured("Redis memory of its stored rows", "B/row", storedPerRow),
		atLeastFig("enqueue its submits (the feed, 100,000 rows)", "rows/s", 20_000, enqueueRate),
		measured("import "+n+" rows end to end (2 workers, latency 0)", "rows/s", float64(rows)/r.elapsed.Seconds()),
		atMostFig("client ('importer run') peak RSS, "+n+" rows", "MB", 100, r.rssMB),
		measured("worker peak RSS, "+n+" rows", "MB", slicesMax(workersRSS)),
		atMostFig("Redis used_memory_peak above its start, "+n+" rows", "B/row", 300, float64(peak-base)/float64(rows)),
		measured("report writing ('importer report', "+n+" rows)", "s", rep.elapsed.Seconds()),
	}, nil
}

func slicesMax(xs []float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// readAndValidate reads a CSV file and validates every row, as a split does.
func readAndValidate(file string) (time.Duration, int, error) {
	opts, err := importer.Options{}.Normalize()
	if err != nil {
		return 0, 0, err
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	began := time.Now()
	rd, err := source.Open(f, "csv")
	if err != nil {
		return 0, 0, err
	}
	v := importer.NewValidator(opts)
	n := 0
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		if _, problems, dup := v.Check(row); len(problems) > 0 || dup > 0 {
			return 0, 0, fmt.Errorf("row %d of the generated file is not valid: %v", row.Number, problems)
		}
		n++
	}
	return time.Since(began), n, nil
}

// splitAndQueue splits a file into a Redis of its own, as 'importer run'
// does, then runs its feed with a window of 100,000 rows and no workers,
// timing the enqueues.
func splitAndQueue(h *harness, file string, rows int) (splitRate, enqueueRate, storedPerRow float64, err error) {
	rs, err := h.startRedis()
	if err != nil {
		return 0, 0, 0, err
	}
	defer rs.close()
	ctx := context.Background()
	opts, _ := importer.Options{}.Normalize()
	st := store.New(rs.rdb)
	imp, _, err := st.CreateImport(ctx, importer.Import{ID: "split", File: filepath.Base(file), Options: opts, CreatedAt: time.Now().UTC(), Total: -1})
	if err != nil {
		return 0, 0, 0, err
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	q := asynq.NewClientFromRedisClient(rs.rdb)
	base := rs.memory("used_memory")
	began := time.Now()
	rd, err := source.Open(f, "csv")
	if err != nil {
		return 0, 0, 0, err
	}
	window := min(rows, 100_000)
	hd := jobs.NewImports(nil, st, q, nil, nil, jobs.Config{Window: window})
	res, err := hd.Split(ctx, imp, rd)
	if err != nil {
		return 0, 0, 0, err
	}
	splitRate = float64(res.Total) / time.Since(began).Seconds()
	storedPerRow = float64(rs.memory("used_memory")-base) / float64(rows)
	h.say("scale: split %d rows at %.0f rows/s, %.0f B/row in Redis", res.Total, splitRate, storedPerRow)

	fs, err := st.Feed(ctx, "split")
	if err != nil {
		return 0, 0, 0, err
	}
	task, _, err := jobs.NewFeedTask(jobs.FeedPayload{ImportID: "split", Gen: fs.Gen, Seq: 1})
	if err != nil {
		return 0, 0, 0, err
	}
	began = time.Now()
	if err := hd.ProcessTask(ctx, task); err != nil {
		return 0, 0, 0, err
	}
	enqueueRate = float64(window) / time.Since(began).Seconds()
	info, err := asynq.NewInspectorFromRedisClient(rs.rdb).GetQueueInfo(jobs.QueueSubmit)
	if err != nil {
		return 0, 0, 0, err
	}
	if info.Size != window {
		return 0, 0, 0, fmt.Errorf("the feed queued %d submits, want %d", info.Size, window)
	}
	h.say("scale: queued %d submits at %.0f rows/s", window, enqueueRate)
	return splitRate, enqueueRate, storedPerRow, nil
}
