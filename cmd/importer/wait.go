package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/rdb"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// wait shows progress until the import is finished, stopped or interrupted.
func (c *runConfig) wait(ctx context.Context, imports *jobs.Imports, st *store.Store, conn *rdb.Redis, id string, stderr io.Writer) error {
	display := newProgress(stderr, id)
	defer display.close()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var doneSince, lostSince time.Time
	watch := newServingWatch(asynq.NewInspectorFromRedisClient(conn.Client), c.workers == 0 || c.noWait)
	for {
		if msg := watch.check(); msg != "" {
			display.say(msg)
		}
		imp, p, err := readProgress(ctx, st, id, func() {
			// go-redis retries a read that times out, so a frozen
			// Redis would look like a slow poll: say so after a while.
			if lostSince.IsZero() {
				lostSince = time.Now()
				fmt.Fprintf(stderr, "cannot reach Redis at %s: no answer for %v; waiting for it to come back\n", conn.Addr, redisSilence)
			}
		})
		switch {
		case err != nil && ctx.Err() != nil:
		case err != nil && errors.Is(err, importer.ErrImportNotFound):
			return unfinished(fmt.Errorf("import %s is gone from Redis at %s: Redis lost its data (restarted without persistence, or flushed); run the same command again to recover it: its rows are looked up in the API before any is sent, so none is created twice", id, conn.Addr))
		case err != nil:
			// Redis restarts or is out of reach for a while: the import
			// is safe in it; say so and keep waiting, up to a limit.
			if lostSince.IsZero() {
				lostSince = time.Now()
				fmt.Fprintf(stderr, "cannot reach Redis at %s; waiting for it to come back (%v)\n", conn.Addr, err)
			}
			if time.Since(lostSince) > c.redisPatience {
				return unfinished(fmt.Errorf("cannot reach Redis at %s for %v: %v", conn.Addr, c.redisPatience, err))
			}
		case !lostSince.IsZero():
			fmt.Fprintf(stderr, "Redis at %s is back after %v\n", conn.Addr, time.Since(lostSince).Round(time.Second))
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
			// report (none is running, or its finalize failed).
			if _, _, err := imports.Finish(ctx, id); err != nil {
				return unfinished(err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			display.close()
			if conn.Embedded {
				return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: import %s ends here, with the in-process Redis; set REDIS_URL for imports that go on without this process", id)}
			}
			if !watch.othersServing() {
				return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: import %s waits in Redis, but no other worker is serving queue %s: start 'importer worker' on this Redis, or run the same command again, and it goes on", id, jobs.QueueSubmit)}
			}
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted: import %s goes on in the workers; run the same command to wait for it again", id)}
		case <-ticker.C:
		}
	}
}

// redisSilence is how long a waiting run's read of its import may go
// unanswered before it says that Redis cannot be reached.
const redisSilence = 3 * time.Second

// readProgress reads the import and its progress. It calls silent once if
// Redis has not answered within redisSilence, and returns when Redis
// answers or fails, or when ctx ends.
func readProgress(ctx context.Context, st *store.Store, id string, silent func()) (importer.Import, importer.Progress, error) {
	type answer struct {
		imp importer.Import
		p   importer.Progress
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		var a answer
		a.imp, a.err = st.Import(ctx, id)
		if a.err == nil {
			a.p, a.err = st.Progress(ctx, id)
		}
		answered <- a
	}()
	timer := time.NewTimer(redisSilence)
	defer timer.Stop()
	for {
		select {
		case a := <-answered:
			return a.imp, a.p, a.err
		case <-timer.C:
			silent()
		case <-ctx.Done():
			return importer.Import{}, importer.Progress{}, ctx.Err()
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

// othersServing reports whether a worker other than this process's own
// serves the submit queue: whether an import goes on once this process
// ends. Unknown (Redis out of reach) counts as yes.
func (w *servingWatch) othersServing() bool {
	servers, err := w.insp.Servers()
	if err != nil {
		return true
	}
	host, _ := os.Hostname()
	for _, s := range servers {
		if _, ok := s.Queues[jobs.QueueSubmit]; ok && s.Status == "active" && (s.PID != os.Getpid() || s.Host != host) {
			return true
		}
	}
	return false
}

// finish makes sure the report is in this run's report folder, prints the
// summary and returns the exit code's error.
func (c *runConfig) finish(ctx context.Context, imports *jobs.Imports, st *store.Store, imp importer.Import, stdout io.Writer) error {
	dir, err := imports.EnsureReport(ctx, imp)
	if err != nil {
		return unfinished(err)
	}
	sum, err := st.Summary(ctx, imp.ID)
	if err != nil {
		return unfinished(err)
	}
	printSummary(stdout, sum)
	if notOK := sum.Total - importer.FineRows(sum.Counts); notOK > 0 {
		fmt.Fprintln(stdout, "rows that did not succeed:")
		shown := 0
		for row, err := range st.Rows(ctx, imp.ID, imp.Total) {
			if err != nil {
				return unfinished(err)
			}
			if row.Result.Outcome.Fine() {
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
		rev, err := imports.Review(ctx, imp, relative(dir)+report.FailedFile, c.redisURL != "")
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

// relative names a folder for people: from the working directory when it
// is below it, with a trailing separator.
func relative(dir string) string { return relativeFile(dir) + string(filepath.Separator) }

// relativeFile names a file for people: from the working directory when it
// is below it.
func relativeFile(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return path
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
	if s.Actions != nil {
		fmt.Fprintf(w, "  %s: %d to create, %d to update, %d not to write\n", s.Mode,
			s.Actions[importer.ActionCreate], s.Actions[importer.ActionUpdate], s.Actions[importer.ActionNone])
	}
	fmt.Fprintf(w, "  API requests: %d creates, %d updates, %d retry-writes, %d status checks, %d listing pages and look-ups, %d other, %d checks of the key and integration; %d answered 429; %d retried after an error\n",
		s.Requests[importer.EndpointCreate], s.Requests[importer.EndpointUpdate], s.Requests[importer.EndpointRetryWrite], s.Requests[importer.EndpointWriteStatus],
		s.Requests[importer.EndpointListResidents], s.Requests[importer.EndpointGetResident], s.Requests[importer.EndpointCheck], s.RateLimited, s.Retries)
	if len(s.UnknownColumns) > 0 {
		fmt.Fprintf(w, "  columns not sent (kept in the report): %s\n", strings.Join(s.UnknownColumns, ", "))
	}
	if len(s.IgnoredColumns) > 0 {
		fmt.Fprintf(w, "  columns of an earlier failed.csv left out: %s\n", strings.Join(s.IgnoredColumns, ", "))
	}
	if s.Mapping != nil {
		fmt.Fprintf(w, "  columns read with the mapping %s (%s)\n", s.Mapping.Name, s.Mapping.Hash)
	}
	if len(s.NotTakenColumns) > 0 {
		fmt.Fprintf(w, "  columns %s does not take, not sent (kept in the report): %s\n", s.Vendor, strings.Join(s.NotTakenColumns, ", "))
	}
}
