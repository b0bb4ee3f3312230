package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/queue"
	"github.com/propexo-importer/importer/internal/ratelimit"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// defaultAPIURL is the production API, used when a key is set without a URL.
const defaultAPIURL = "https://api.propexo.com"

// apiFor returns the write API this process's workers talk to. With no key
// and no URL it starts the in-process sandbox, but only with the in-process
// Redis: on a shared Redis the rows would be split between the sandbox and
// the other workers' API. A nil API means: leave the work to the workers.
func (c *runConfig) apiFor(ctx context.Context, rdb *queue.Redis, limiter *ratelimit.Limiter, stderr io.Writer) (importer.WriteAPI, func(), error) {
	if c.api.key == "" && c.api.url == "" {
		if !rdb.Embedded {
			fmt.Fprintln(stderr, "no PROPEXO_API_KEY or --api-url: leaving the rows to the 'importer worker' processes on this Redis")
			return nil, func() {}, nil
		}
		latency, err := sandbox.ParseLatency(c.sandboxLatency)
		if err != nil {
			return nil, nil, usageError("--sandbox-latency: %v", err)
		}
		if c.sandboxFailureRate < 0 || c.sandboxFailureRate > 1 {
			return nil, nil, usageError("--sandbox-failure-rate %v: use a share from 0 to 1", c.sandboxFailureRate)
		}
		rateLimit := c.limits.perWindow
		if rateLimit == 0 {
			rateLimit = -1 // the sandbox's "no limit"
		}
		sb, err := startSandbox(sandbox.Config{Latency: latency, FailureRate: c.sandboxFailureRate,
			RateLimit: rateLimit, RateWindow: c.limits.window})
		if err != nil {
			return nil, nil, unfinished(err)
		}
		fmt.Fprintf(stderr, "no REDIS_URL, PROPEXO_API_KEY or --api-url: using an in-process Redis, %d in-process workers and the in-process sandbox at %s\n", c.workers, sb.url)
		client, err := newAPIClient(ctx, sb.url, sb.key, c.api.timeout, limiter, false)
		if err != nil {
			sb.close()
			return nil, nil, err
		}
		return client, sb.close, nil
	}
	url, key, err := c.api.endpoint()
	if err != nil {
		return nil, nil, err
	}
	if rdb.Embedded {
		fmt.Fprintln(stderr, "warning: no REDIS_URL: the import's state lives in this process only; if it is interrupted, a new run cannot tell which rows were already sent. Set REDIS_URL for imports that can resume.")
	}
	client, err := newAPIClient(ctx, url, key, c.api.timeout, limiter, true)
	if err != nil {
		return nil, nil, err
	}
	return client, func() {}, nil
}

func asynqClient(rdb *queue.Redis) *asynq.Client {
	return asynq.NewClientFromRedisClient(rdb.Client)
}

// wait shows progress until the import is finished, stopped or interrupted.
func (c *runConfig) wait(ctx context.Context, st *store.Store, rdb *queue.Redis, id string, stderr io.Writer) error {
	display := newProgress(stderr, id)
	defer display.close()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var doneSince, lostSince time.Time
	watch := newServingWatch(asynq.NewInspectorFromRedisClient(rdb.Client), c.workers == 0 || c.noWait)
	for {
		if msg := watch.check(); msg != "" {
			display.say(msg)
		}
		imp, err := st.Import(ctx, id)
		var p importer.Progress
		if err == nil {
			p, err = st.Progress(ctx, id)
		}
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil && errors.Is(err, importer.ErrImportNotFound):
			return unfinished(fmt.Errorf("import %s is gone from Redis at %s: Redis lost its data (restarted without persistence, or flushed); run the same command again to recover it: its rows are looked up in the API before any is sent, so none is created twice", id, rdb.Addr))
		case err != nil:
			// Redis restarts or is out of reach for a while: the import
			// is safe in it; say so and keep waiting, up to a limit.
			if lostSince.IsZero() {
				lostSince = time.Now()
				fmt.Fprintf(stderr, "cannot reach Redis at %s; waiting for it to come back (%v)\n", rdb.Addr, err)
			}
			if time.Since(lostSince) > c.redisPatience {
				return unfinished(fmt.Errorf("cannot reach Redis at %s for %v: %v", rdb.Addr, c.redisPatience, err))
			}
		case !lostSince.IsZero():
			fmt.Fprintf(stderr, "Redis at %s is back after %v\n", rdb.Addr, time.Since(lostSince).Round(time.Second))
			lostSince = time.Time{}
		}
		if err == nil {
			display.update(p)
		}
		switch {
		case err != nil:
		case imp.Finished():
			return nil
		case imp.Stopped != "":
			return unfinished(fmt.Errorf("import %s stopped: %s", id, imp.Stopped))
		case p.Done() && doneSince.IsZero():
			doneSince = time.Now()
		case p.Done() && time.Since(doneSince) > 10*time.Second:
			// Every row has its outcome but no worker wrote the
			// report (none is running, or its finalize failed):
			// write it here.
			dir, _ := filepath.Abs(c.reportDir)
			if err := (reportFinisher{st: st, dir: dir}).finish(ctx, id); err != nil {
				return unfinished(err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			display.close()
			if rdb.Embedded {
				return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: import %s ends here, with the in-process Redis; set REDIS_URL for imports that go on without this process", id)}
			}
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: import %s goes on in the workers; run the same command to wait for it again", id)}
		case <-ticker.C:
		}
	}
}

// servingWatch tells a waiting run, when no worker is serving the submit
// queue for 30 seconds, that none is (and when one is again), from Asynq's
// list of servers.
type servingWatch struct {
	insp      *asynq.Inspector
	elsewhere bool // the work is left to 'importer worker' processes
	now       func() time.Time
	since     time.Time
	looked    time.Time
	said      bool
}

func newServingWatch(insp *asynq.Inspector, elsewhere bool) *servingWatch {
	return &servingWatch{insp: insp, elsewhere: elsewhere, now: time.Now, since: time.Now()}
}

// check looks at the servers every few seconds and returns what to say, if
// anything.
func (w *servingWatch) check() string {
	now := w.now()
	if now.Sub(w.looked) < 5*time.Second {
		return ""
	}
	w.looked = now
	servers, err := w.insp.Servers()
	if err != nil {
		return "" // Redis out of reach: said elsewhere
	}
	serving := false
	for _, s := range servers {
		if _, ok := s.Queues[jobs.QueueSubmit]; ok && s.Status == "active" {
			serving = true
		}
	}
	switch {
	case serving && w.said:
		w.said, w.since = false, now
		return "a worker is serving queue " + jobs.QueueSubmit + " now"
	case serving:
		w.since = now
	case !w.said && now.Sub(w.since) >= 30*time.Second:
		w.said = true
		hint := "start 'importer worker' on this Redis"
		if w.elsewhere {
			hint = "start 'importer worker' or run without --workers 0 / --no-wait"
		}
		return fmt.Sprintf("no worker is serving queue %s on this Redis; %s", jobs.QueueSubmit, hint)
	}
	return ""
}

// finish makes sure the report is in this run's report folder, prints the
// summary and returns the exit code's error.
func (c *runConfig) finish(ctx context.Context, st *store.Store, imp importer.Import, stdout io.Writer) error {
	reportDir, _ := filepath.Abs(c.reportDir)
	dir := report.Dir(reportDir, imp.ID)
	// Write the report here unless a worker wrote this round's already.
	if info, err := os.Stat(filepath.Join(dir, report.SummaryFile)); errors.Is(err, fs.ErrNotExist) || (err == nil && info.ModTime().Before(imp.FinishedAt.Add(-time.Second))) {
		if _, err := (reportWriter{store: st, dir: reportDir}).WriteReport(ctx, imp); err != nil {
			return unfinished(err)
		}
	}
	sum, err := st.Summary(ctx, imp.ID)
	if err != nil {
		return unfinished(err)
	}
	printSummary(stdout, sum)
	if notOK := sum.Total - sum.Counts[importer.Succeeded]; notOK > 0 {
		fmt.Fprintln(stdout, "rows that did not succeed:")
		shown := 0
		for row, err := range st.Rows(ctx, imp.ID, imp.Total) {
			if err != nil {
				return unfinished(err)
			}
			if row.Result.Outcome == importer.Succeeded {
				continue
			}
			if shown == 20 {
				fmt.Fprintf(stdout, "  ... and %d more in results.csv\n", notOK-shown)
				break
			}
			fmt.Fprintf(stdout, "  %s: %s: %s\n", where(row.Result), row.Result.Outcome, row.Result.Error)
			shown++
		}
	}
	fmt.Fprintf(stdout, "report: %s\n", relative(dir))
	if !sum.AllSucceeded() {
		p, err := st.Progress(ctx, imp.ID)
		if err != nil {
			return unfinished(err)
		}
		rev, err := jobs.ReviewImport(imp, p, st.Rows(ctx, imp.ID, imp.Total), relative(dir)+report.FailedFile, c.redisURL != "")
		if err != nil {
			return unfinished(err)
		}
		for _, step := range rev.NextSteps {
			fmt.Fprintf(stdout, "next: %s\n", step)
		}
		return &exitError{code: exitSomeFailed}
	}
	return nil
}

func where(r importer.RowResult) string {
	return importer.Row{Number: r.Row, Line: r.Line}.Where()
}

func relative(dir string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(rel, "..") {
			return rel + string(filepath.Separator)
		}
	}
	return dir + string(filepath.Separator)
}

func printSummary(w io.Writer, s importer.Summary) {
	fmt.Fprintf(w, "import %s: %s from %s in %s\n", s.ImportID, plural(s.Total, "row"), s.File, (time.Duration(s.Seconds * float64(time.Second))).Round(100*time.Millisecond))
	var parts []string
	for _, o := range importer.Outcomes {
		if n := s.Counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(parts, ", "))
	fmt.Fprintf(w, "  API requests: %d creates, %d retry-writes, %d status checks, %d other; %d answered 429; %d retried after an error\n",
		s.Requests[importer.EndpointCreate], s.Requests[importer.EndpointRetryWrite], s.Requests[importer.EndpointWriteStatus],
		s.Requests[importer.EndpointGetResident]+s.Requests[importer.EndpointListResidents], s.RateLimited, s.Retries)
	if len(s.UnknownColumns) > 0 {
		fmt.Fprintf(w, "  columns not sent (kept in the report): %s\n", strings.Join(s.UnknownColumns, ", "))
	}
	if len(s.IgnoredColumns) > 0 {
		fmt.Fprintf(w, "  columns of an earlier failed.csv left out: %s\n", strings.Join(s.IgnoredColumns, ", "))
	}
}

// dryRunImport validates the whole file and prints what would be sent.
func (c *runConfig) dryRunImport(ctx context.Context, p prepared, stdout, stderr io.Writer) error {
	rows, f, err := openRows(p.path, p.format, c.inputOptions(p.imp.Options))
	if err != nil {
		return err
	}
	defer f.Close()
	v := importer.NewValidator(p.imp.Options)
	path := p.imp.Options.Vendor.CreatePath()
	var total, bad int
	for {
		row, err := rows.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return inputError(p.shown, err)
		}
		total++
		if total%1000 == 0 && ctx.Err() != nil {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted after %d rows of the dry run; nothing was sent", total)}
		}
		res, problems, dupOf := v.Check(row)
		switch {
		case len(problems) > 0:
			bad++
			fmt.Fprintf(stdout, "%s: invalid: %s\n", row.Where(), importer.JoinProblems(problems))
		case dupOf > 0:
			bad++
			fmt.Fprintf(stdout, "%s: duplicate: the same record as row %d\n", row.Where(), dupOf)
		default:
			body, _ := json.Marshal(res)
			fmt.Fprintf(stdout, "%s: POST %s %s\n", row.Where(), path, body)
		}
	}
	fmt.Fprintf(stderr, "dry run of %s (import %s): %s, %d would be sent, %d would not; nothing was sent\n", p.shown, p.imp.ID, plural(total, "row"), total-bad, bad)
	if ignored := rows.IgnoredColumns(); len(ignored) > 0 {
		fmt.Fprintf(stderr, "columns of an earlier failed.csv left out: %s\n", strings.Join(ignored, ", "))
	}
	if unknown := rows.UnknownColumns(); len(unknown) > 0 {
		fmt.Fprintf(stderr, "columns not sent (kept in the report): %s\n", strings.Join(unknown, ", "))
	}
	if bad > 0 {
		return &exitError{code: exitSomeFailed}
	}
	return nil
}

// progress shows how far an import has come: a bar on a terminal, a line
// every few seconds elsewhere (logs, cron mail), and at least every 30
// seconds even when nothing changed. Its rate counts the rows sent and
// resolved, in rows a minute: invalid and duplicate rows, resolved at once,
// would make it absurd.
type progress struct {
	w        io.Writer
	id       string
	bar      *progressbar.ProgressBar
	tty      bool
	last     importer.Progress
	lastLine time.Time
	began    time.Time
	now      func() time.Time
	closed   bool
}

func newProgress(w io.Writer, id string) *progress {
	p := &progress{w: w, id: id, began: time.Now(), now: time.Now}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// sentResolved counts the rows that were sent and have their outcome.
func sentResolved(pr importer.Progress) int {
	return pr.Resolved - pr.Counts[importer.Invalid] - pr.Counts[importer.Duplicate] - pr.Counts[importer.Cancelled]
}

// rate is the rows sent and resolved a minute since the wait began.
func (p *progress) rate(pr importer.Progress) string {
	minutes := p.now().Sub(p.began).Minutes()
	if minutes < 0.05 {
		return "… rows/min"
	}
	return fmt.Sprintf("%.0f rows/min", float64(sentResolved(pr))/minutes)
}

func (p *progress) update(pr importer.Progress) {
	if p.closed {
		return
	}
	if p.tty {
		if p.bar == nil && pr.Total >= 0 {
			p.bar = progressbar.NewOptions(pr.Total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.id),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(200*time.Millisecond))
			p.bar.Set(pr.Resolved)
		}
		if p.bar != nil {
			p.bar.Describe(p.id + " " + p.rate(pr))
			if pr.Resolved != p.last.Resolved {
				p.bar.Set(pr.Resolved)
			}
		}
		p.last = pr
		return
	}
	changed := pr.Resolved != p.last.Resolved || pr.Total != p.last.Total
	since := p.now().Sub(p.lastLine)
	if p.lastLine.IsZero() || (changed && since >= 5*time.Second) || since >= 30*time.Second {
		total := "?"
		if pr.Total >= 0 {
			total = fmt.Sprint(pr.Total)
		}
		fmt.Fprintf(p.w, "%s: %d of %s rows resolved (%d succeeded), %s\n", p.id, pr.Resolved, total, pr.Counts[importer.Succeeded], p.rate(pr))
		p.lastLine = p.now()
	}
	p.last = pr
}

// say prints a line of news between progress lines.
func (p *progress) say(msg string) {
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progress) close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
