package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/queue"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/source"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

type runConfig struct {
	opts       importer.Options
	vendor     string
	rentDueDay string
	importID   string
	dryRun     bool
	retention  time.Duration
	// redisPatience is how long a waiting run bears with Redis out of
	// reach before it exits 3.
	redisPatience time.Duration
	// recoveryWait is how long a recovered import waits before it looks
	// its rows up.
	recoveryWait time.Duration
	maxField     int
	maxRecord    int
	maxColumns   int
	noWait       bool
	workers      int
	reportDir    string
	redisURL     string
	api          apiSettings
	limits       limits
	jobs         jobs.Config
	// again starts a new import of a file imported before.
	again bool
	// retryOpts are the choices of 'importer retry'.
	retryOpts jobs.RetryOptions

	sandboxLatency     string
	sandboxFailureRate float64
}

func newRunCommand(getenv env, g *globals, stdout, stderr io.Writer) *cobra.Command {
	c := &runConfig{}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Import a file of residents and wait for its report",
		Long: `run reads FILE (CSV, JSON array or NDJSON), validates every row, enqueues one
submit task per valid row and waits until every row has an outcome, showing
progress. Then it prints the summary and the report's folder.

Running the same command again is the same import: it sends nothing twice and
waits for (or re-prints) the same result. Ctrl-C stops waiting; with REDIS_URL
set the import goes on in the workers.

Exit codes: 0 every row succeeded, 1 finished but some rows did not succeed,
2 bad usage, configuration or unreadable input, 3 could not finish (Redis or
the API unreachable, credentials rejected), 130 interrupted.`,
		Example: `  importer run samples/residents.csv
  importer run --vendor rentmanager --integration-id int_123 --property-id prop_9 \
      --rent-period monthly --rent-due-day 1 residents.csv
  REDIS_URL=redis://localhost:6379 importer run --no-wait residents.csv`,
		Args: exactlyOne("run", "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), args[0], g.waitingLogger(cmd, getenv, stderr), stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.opts.Format, "format", "", "input format: csv, json or ndjson (default: from the file's extension)")
	f.StringVar(&c.opts.Delimiter, "delimiter", ",", "the character between a CSV file's fields: ; | or tab, say")
	f.StringVar(&c.vendor, "vendor", envOr(getenv, "IMPORTER_VENDOR", "generic"), "vendor rules and create path: generic, rentmanager or propertyware_rest "+envTag("IMPORTER_VENDOR"))
	f.StringVar(&c.opts.IntegrationID, "integration-id", getenv("IMPORTER_INTEGRATION_ID"), "integration_id for rows that have none "+envTag("IMPORTER_INTEGRATION_ID"))
	f.StringVar(&c.opts.PropertyID, "property-id", getenv("IMPORTER_PROPERTY_ID"), "property_id for rows that have none "+envTag("IMPORTER_PROPERTY_ID"))
	f.StringVar(&c.opts.RentPeriod, "rent-period", getenv("IMPORTER_RENT_PERIOD"), "rent_period for rows that have none: monthly, weekly or daily, any case "+envTag("IMPORTER_RENT_PERIOD"))
	f.StringVar(&c.rentDueDay, "rent-due-day", getenv("IMPORTER_RENT_DUE_DAY"), "rent_due_day (1-31) for rows that have none "+envTag("IMPORTER_RENT_DUE_DAY"))
	f.DurationVar(&c.opts.Deadline, "deadline", importer.DefaultDeadline, "how long to follow a write that stays PENDING before its row is timed_out")
	f.BoolVar(&c.opts.Verify, "verify", false, "read every created resident back and fail the row if it is missing (one more request per row)")
	f.StringVar(&c.importID, "import-id", "", "the import's id (default: derived from the file's content and the options, so a re-run resumes)")
	f.DurationVar(&c.retention, "retention", envDuration(getenv, "IMPORTER_RETENTION", importer.DefaultRetention), "how long the rows (personal data) stay in Redis once the report is written "+envTag("IMPORTER_RETENTION"))
	f.IntVar(&c.maxField, "max-field-bytes", importer.DefaultLimits.MaxFieldBytes, "longest value read; a longer one makes its row invalid")
	f.IntVar(&c.maxRecord, "max-record-bytes", importer.DefaultLimits.MaxRecordBytes, "longest record read; a longer one is an invalid row")
	f.IntVar(&c.maxColumns, "max-columns", importer.DefaultLimits.MaxColumns, "most columns read; a wider header refuses the file")
	f.BoolVar(&c.dryRun, "dry-run", false, "validate the whole file and print what would be sent; send nothing, need no Redis")
	f.BoolVar(&c.again, "again", false, "import a file whose content was imported before anew, as a new import (without it, run refuses, naming the earlier import)")
	f.DurationVar(&c.recoveryWait, "recovery-wait", importer.DefaultRecoveryWait, "when Redis lost an import this machine started, how long its recovery waits before looking its rows up (writes sent before the loss resolve meanwhile)")
	c.registerWorkFlags(f, getenv)
	pollFlags(f, &c.jobs)
	f.IntVar(&c.jobs.Window, "window", jobs.DefaultWindow, "rows of an import in flight at once in this process's workers: more are queued as rows resolve, so a big file never floods Redis")
	f.StringVar(&c.sandboxLatency, "sandbox-latency", sandbox.DefaultLatency, "how long writes stay PENDING in the in-process sandbox (fixed:2s, uniform:1s-5s, lognormal:median=2s,p99=30s)")
	f.Float64Var(&c.sandboxFailureRate, "sandbox-failure-rate", 0, "share of writes (0-1) the in-process sandbox fails")
	return cmd
}

// inputOptions are how the file is read: its limits and its delimiter.
func (c *runConfig) inputOptions(opts importer.Options) source.Options {
	return source.Options{Limits: importer.Limits{MaxFieldBytes: c.maxField, MaxRecordBytes: c.maxRecord, MaxColumns: c.maxColumns},
		Delimiter: opts.DelimiterRune()}
}

// localWorkers starts this process's workers while it waits (unless
// --no-wait or --workers 0), and returns what stops them.
func (c *runConfig) localWorkers(ctx context.Context, rdb *queue.Redis, st *store.Store, log *slog.Logger, stderr io.Writer) (stop func(), err error) {
	limiter := c.limits.limiter(rdb, log)
	if c.workers == 0 || c.noWait {
		if c.api.key == "" {
			return func() {}, nil // the workers elsewhere hold the key
		}
		// No workers here, but the API is configured: check it now, so a
		// wrong key or URL is told before the import is registered.
		url, key, err := c.api.endpoint()
		if err != nil {
			return nil, err
		}
		if _, err := newAPIClient(ctx, url, key, c.api.timeout, limiter, true); err != nil {
			return nil, err
		}
		return func() {}, nil
	}
	if limiter != nil {
		c.jobs.Limiter = limiter
	}
	api, closeAPI, err := c.apiFor(ctx, rdb, limiter, stderr)
	if err != nil {
		return nil, err
	}
	if api == nil {
		return closeAPI, nil
	}
	reportDir, err := filepath.Abs(c.reportDir)
	if err != nil {
		closeAPI()
		return nil, usageError("--report-dir: %v", err)
	}
	w, err := startWorkers(rdb, api, st, reportDir, c.workers, log, c.jobs)
	if err != nil {
		closeAPI()
		return nil, unfinished(err)
	}
	return func() { w.stop(); closeAPI() }, nil
}

// pollFlags adds the flags of how writes are followed: the status checks'
// delays and the retries of requests that failed.
func pollFlags(f *pflag.FlagSet, cfg *jobs.Config) {
	f.DurationVar(&cfg.PollInitial, "poll-initial", jobs.DefaultPollInitial, "delay before a write's first status check, before anything is learned; later checks back off")
	f.DurationVar(&cfg.PollMax, "poll-max", jobs.DefaultPollMax, "longest delay between two status checks of a write")
	retryFlag(f, cfg)
}

// retryFlag adds --max-retries.
func retryFlag(f *pflag.FlagSet, cfg *jobs.Config) {
	f.IntVar(&cfg.MaxRetry, "max-retries", jobs.DefaultMaxRetry, "retries of a request after a 5xx or network error before its row fails (waits for a rate limit do not count)")
}

// registerWorkFlags adds the flags of commands that queue rows and may work
// on them while they wait: run and retry.
func (c *runConfig) registerWorkFlags(f *pflag.FlagSet, getenv env) {
	f.BoolVar(&c.noWait, "no-wait", false, "enqueue the rows and exit 0 at once; 'importer worker' processes do the work")
	f.IntVar(&c.workers, "workers", 10, "tasks this process works on at once while it waits (0: leave the work to 'importer worker')")
	f.StringVar(&c.reportDir, "report-dir", envOr(getenv, "IMPORTER_REPORT_DIR", "reports"), "folder that receives <import id>/results.csv, failed.csv and summary.json "+envTag("IMPORTER_REPORT_DIR"))
	urlFlag(f, &c.redisURL, "redis-url", getenv("REDIS_URL"), "Redis that holds the queue and the imports (run without it: an in-process Redis, gone when run exits) "+envTag("REDIS_URL"))
	f.DurationVar(&c.redisPatience, "redis-patience", 5*time.Minute, "how long a waiting run bears with Redis out of reach (a restart, a failover) before it exits 3")
	c.api.register(f, getenv)
	c.limits.register(f, getenv)
}

// prepared is a file that has been read once: its format, options and id.
type prepared struct {
	// path is where the file is read; shown, how the user named it (they
	// differ for standard input and pipes, read from a private copy).
	path, shown string
	imp         importer.Import
	format      string
}

// stdinName is the FILE argument that reads standard input.
const stdinName = "-"

// spool copies a stream that can be read only once — standard input, a
// named pipe — into a private temporary file, so that the import can read
// it twice (once to check and hash it, once to split it). Regular files are
// read where they are; devices, sockets and terminals are refused. It
// returns the path to read and what removes the copy.
func spool(path string) (string, func(), error) {
	noop := func() {}
	var in *os.File
	if path == stdinName {
		if info, err := os.Stdin.Stat(); err == nil && info.Mode()&os.ModeCharDevice != 0 {
			return "", nil, usageError("standard input is a terminal: pipe the file into it (importer run --format csv - < residents.csv)")
		}
		in = os.Stdin
	} else {
		info, err := os.Stat(path)
		switch {
		case err != nil:
			return "", nil, usageError("cannot open %s: %v", path, errors.Unwrap(err))
		case info.IsDir():
			return "", nil, usageError("%s is a folder, not a file", path)
		case info.Mode().IsRegular():
			return path, noop, nil
		case info.Mode()&os.ModeNamedPipe == 0:
			return "", nil, usageError("%s is not a file (a device or a socket): give a file, a named pipe, or - for standard input", path)
		}
		if in, err = os.Open(path); err != nil {
			return "", nil, usageError("cannot open %s: %v", path, errors.Unwrap(err))
		}
		defer in.Close()
	}
	tmp, err := os.CreateTemp("", "importer-input-*")
	if err != nil {
		return "", nil, unfinished(fmt.Errorf("error keeping a copy of %s: %w", path, err))
	}
	remove := func() { os.Remove(tmp.Name()) }
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		remove()
		return "", nil, usageError("cannot read %s: %v", path, err)
	}
	if err := tmp.Close(); err != nil {
		remove()
		return "", nil, unfinished(fmt.Errorf("error keeping a copy of %s: %w", path, err))
	}
	return tmp.Name(), remove, nil
}

// prepare reads the file once (see scan) and settles the import's id and
// options. A stream (standard input, a pipe) is first copied to a private
// temporary file, which cleanup removes.
func (c *runConfig) prepare(ctx context.Context, path string) (p prepared, cleanup func(), err error) {
	cleanup = func() {}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return p, cleanup, usageError("%s is a folder, not a file", path)
	}
	if path == stdinName && c.opts.Format == "" {
		return p, cleanup, usageError("reading standard input: give its format with --format csv, json or ndjson")
	}
	format, err := source.FormatOf(path, c.opts.Format)
	if err != nil {
		return p, cleanup, usageError("%v", err)
	}
	readPath, cleanup, err := spool(path)
	if err != nil {
		return p, func() {}, err
	}
	p, err = c.prepareFile(ctx, path, readPath, format)
	return p, cleanup, err
}

func (c *runConfig) prepareFile(ctx context.Context, path, readPath, format string) (prepared, error) {
	var p prepared
	c.opts.Format = format
	c.opts.Vendor = importer.Vendor(c.vendor)
	if c.rentDueDay != "" {
		day, err := importer.ParseRentDueDay(c.rentDueDay)
		if err != nil {
			return p, usageError("--rent-due-day: %v", err)
		}
		c.opts.RentDueDay = day
	}
	opts, err := c.opts.Normalize()
	if err != nil {
		return p, usageError("%v", err)
	}
	if err := c.limits.validate(); err != nil {
		return p, err
	}
	if c.retention < time.Minute {
		return p, usageError("--retention %v: use a minute or more", c.retention)
	}
	if c.workers < 0 {
		return p, usageError("--workers %d: use 0 or more", c.workers)
	}
	if c.importID != "" {
		if err := importer.ValidateImportID(c.importID); err != nil {
			return p, usageError("%v", err)
		}
	}
	sum, records, err := scan(ctx, readPath, format, c.inputOptions(opts))
	if err != nil {
		if path != readPath {
			err = errors.New(strings.ReplaceAll(err.Error(), readPath, path))
			return p, usageError("%v", err)
		}
		return p, err
	}
	if records == 0 {
		return p, usageError("%s: the file holds no records", path)
	}
	reportDir, err := filepath.Abs(c.reportDir)
	if err != nil {
		return p, usageError("--report-dir: %v", err)
	}
	name := filepath.Base(path)
	if path == stdinName {
		name = "stdin"
	}
	id := c.importID
	if id == "" {
		id = importer.NewImportID(name, sum, opts)
	}
	p.path, p.shown, p.format = readPath, path, format
	p.imp = importer.Import{ID: id, File: name, FileSHA256: hex.EncodeToString(sum), ContentKey: importer.ContentKey(sum, opts), Options: opts, ReportDir: reportDir, CreatedAt: time.Now().UTC(), Total: -1, Retention: c.retention}
	return p, nil
}

// scan reads the whole file once: its SHA-256 (for the import id) and a check
// that it can be read to the end, so that a broken file is refused before
// anything is queued.
func scan(ctx context.Context, path, format string, opts source.Options) (sum []byte, records int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, usageError("cannot open %s: %v", path, errors.Unwrap(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, 0, usageError("%s is a folder, not a file", path)
	}
	h := sha256.New()
	tee := io.TeeReader(f, h)
	rd, err := source.Open(tee, format, opts)
	if err != nil {
		return nil, 0, inputError(path, err)
	}
	for {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, inputError(path, err)
		}
		records++
		if records%1000 == 0 && ctx.Err() != nil {
			return nil, 0, &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted while reading %s; nothing was sent", path)}
		}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, 0, inputError(path, err)
	}
	if err := rd.CheckColumns(); err != nil {
		return nil, 0, inputError(path, err)
	}
	return h.Sum(nil), records, nil
}

func inputError(path string, err error) error {
	return usageError("%s: %v", path, err)
}

func openRows(path, format string, opts source.Options) (*source.Reader, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, usageError("cannot open %s: %v", path, errors.Unwrap(err))
	}
	rd, err := source.Open(f, format, opts)
	if err != nil {
		f.Close()
		return nil, nil, inputError(path, err)
	}
	return rd, f, nil
}

// register makes the import in Redis, or finds it there, and keeps its
// receipt in the report folder. When the receipt says this machine started
// the import and Redis no longer has it (Redis lost its data), the import is
// made again as a recovery: its rows may have been sent before the loss, so
// each is looked up in the API before it is sent.
// checkContent looks for an import of the same content (and options of
// what is written) under another id — the same file under another name,
// or with --import-id — and refuses to send it again without --again, which
// starts a new import of it under an id of its own.
func (c *runConfig) checkContent(ctx context.Context, st *store.Store, p prepared) (prepared, error) {
	other, ok, err := st.ImportByContent(ctx, p.imp.ContentKey)
	if err != nil {
		return p, unfinished(err)
	}
	if ok && !c.again {
		prev, err := st.Import(ctx, other)
		if errors.Is(err, importer.ErrImportNotFound) {
			return p, nil // deleted since
		}
		if err != nil {
			return p, unfinished(err)
		}
		pr, err := st.Progress(ctx, other)
		if err != nil {
			return p, unfinished(err)
		}
		return p, usageError("the content of %s was imported already, as import %s (%s, started %s, %s): nothing was sent; wait for that import with the command that started it, or run again with --again to import the file anew",
			p.shown, other, prev.State(), prev.CreatedAt.Local().Format(time.RFC3339), outcomeCounts(pr))
	}
	return p, nil
}

// freshID is id, or, when an import has it already, id-2, id-3...: the id
// of a new import of a file imported before (--again).
func freshID(ctx context.Context, st *store.Store, id string) (string, error) {
	for n := 1; ; n++ {
		try := id
		if n > 1 {
			try = fmt.Sprintf("%s-%d", id, n)
		}
		_, err := st.Import(ctx, try)
		if errors.Is(err, importer.ErrImportNotFound) {
			return try, nil
		}
		if err != nil {
			return "", unfinished(err)
		}
	}
}

// outcomeCounts says an import's outcomes in a few words: "12 succeeded,
// 1 failed of 13".
func outcomeCounts(p importer.Progress) string {
	var parts []string
	for _, o := range importer.Outcomes {
		if n := p.Counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no row resolved yet"}
	}
	total := "?"
	if p.Total >= 0 {
		total = fmt.Sprint(p.Total)
	}
	return strings.Join(parts, ", ") + " of " + total + " rows"
}

// checkWritable makes the report folder and checks that a file can be
// written in it, so that an unwritable folder is found before anything is
// sent.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return usageError("--report-dir %s: cannot create it: %v", relative(dir), errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".importer-check-*")
	if err != nil {
		return usageError("--report-dir %s: cannot write there: %v", relative(dir), errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func (c *runConfig) register(ctx context.Context, st *store.Store, rdb *queue.Redis, p prepared, stderr io.Writer) (importer.Import, bool, error) {
	epoch, _, err := st.Epoch(ctx)
	if err != nil {
		return importer.Import{}, false, unfinished(err)
	}
	p.imp.Epoch = epoch
	receipt, known, err := report.ReadReceipt(p.imp.ReportDir, p.imp.ID)
	if err != nil {
		return importer.Import{}, false, usageError("%v", err)
	}
	// The in-process sandbox starts empty with every run: nothing of an
	// earlier run's can exist in it.
	sandboxed := rdb.Embedded && c.api.key == "" && c.api.url == ""
	if known && !sandboxed {
		if _, err := st.Import(ctx, p.imp.ID); errors.Is(err, importer.ErrImportNotFound) {
			p.imp.Recovery = &importer.Recovery{FirstStartedAt: receipt.StartedAt, LookupFrom: time.Now().Add(c.recoveryWait).UTC()}
			if receipt.Epoch != epoch {
				p.imp.Recovery.LostEpoch = receipt.Epoch
			}
		} else if err != nil {
			return importer.Import{}, false, unfinished(err)
		}
	}
	imp, created, err := st.CreateImport(ctx, p.imp)
	if err != nil {
		return importer.Import{}, false, unfinished(err)
	}
	if created || !known {
		started := imp.CreatedAt
		if imp.Recovery != nil {
			started = imp.Recovery.FirstStartedAt
		}
		if err := report.WriteReceipt(p.imp.ReportDir, report.Receipt{ImportID: imp.ID, File: imp.File, FileSHA256: imp.FileSHA256,
			StartedAt: started, Epoch: imp.Epoch, Redis: rdb.Addr}); err != nil {
			return importer.Import{}, false, usageError("--report-dir %s: %v", relative(p.imp.ReportDir), err)
		}
	}
	if created && imp.Recovery != nil {
		fmt.Fprintf(stderr, "import %s was started on %s, but Redis at %s no longer has it (it lost its data: restarted without persistence, or flushed); recovering it: each row is looked up in the API before it is sent, from %s, so none is created twice\n",
			imp.ID, imp.Recovery.FirstStartedAt.Local().Format(time.RFC3339), rdb.Addr, imp.Recovery.LookupFrom.Local().Format(time.TimeOnly))
	}
	return imp, created, nil
}

func (c *runConfig) run(ctx context.Context, path string, log *slog.Logger, stdout, stderr io.Writer) error {
	if err := c.api.resolveKey(); err != nil {
		return err
	}
	p, cleanup, err := c.prepare(ctx, path)
	defer cleanup()
	if err != nil {
		return err
	}
	if c.dryRun {
		return c.dryRunImport(ctx, p, stdout, stderr)
	}
	if err := checkWritable(p.imp.ReportDir); err != nil {
		return err
	}

	rdb, err := connectRedis(ctx, c.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	st := store.New(rdb.Client)

	if c.again {
		if p.imp.ID, err = freshID(ctx, st, p.imp.ID); err != nil {
			return err
		}
	}
	// The same import run again: the same file, written the same way. A
	// finished one is shown again; nothing is sent.
	existing, err := st.Import(ctx, p.imp.ID)
	switch {
	case errors.Is(err, importer.ErrImportNotFound):
		if p, err = c.checkContent(ctx, st, p); err != nil {
			return err
		}
	case err != nil:
		return unfinished(err)
	case existing.FileSHA256 != p.imp.FileSHA256 || existing.Options.Writes() != p.imp.Options.Writes():
		return usageError("import %s was started from another file or with options that change what is written (%s); give another --import-id", existing.ID, existing.File)
	case existing.Finished():
		fmt.Fprintf(stderr, "import %s already finished; here is its result again\n", existing.ID)
		return c.finish(ctx, st, existing, stdout)
	}

	if rdb.Embedded && (c.noWait || c.workers == 0) {
		return usageError("--no-wait and --workers 0 need REDIS_URL: the in-process Redis is gone when run exits")
	}
	// The API is checked (and this process's workers started) before the
	// import is registered: a rejected key or a wrong URL leaves nothing
	// behind.
	stop, err := c.localWorkers(ctx, rdb, st, log, stderr)
	if err != nil {
		return err
	}
	defer stop()

	imp, created, err := c.register(ctx, st, rdb, p, stderr)
	if err != nil {
		return err
	}
	if !created {
		// A re-run's choices of how the import is followed, and of where
		// its report goes, win over the first run's.
		if err := st.Refollow(ctx, imp.ID, p.imp.Options, p.imp.ReportDir); err != nil {
			return unfinished(err)
		}
		if imp, err = st.Import(ctx, imp.ID); err != nil {
			return unfinished(err)
		}
	}

	if imp.Stopped != "" {
		fmt.Fprintf(stderr, "import %s was stopped (%s); resuming it\n", imp.ID, imp.Stopped)
		if err := st.Resume(ctx, imp.ID); err != nil {
			return unfinished(err)
		}
	} else if !created {
		fmt.Fprintf(stderr, "import %s is already under way; resuming it\n", imp.ID)
	}

	rows, f, err := openRows(p.path, p.format, c.inputOptions(p.imp.Options))
	if err != nil {
		return err
	}
	q := asynqClient(rdb)
	split, err := jobs.Split(ctx, q, st, imp, rows)
	f.Close()
	if err != nil {
		var synErr *source.SyntaxError
		if errors.As(err, &synErr) {
			return inputError(p.shown, err)
		}
		return unfinished(fmt.Errorf("error queuing the rows of %s: %w", p.shown, err))
	}
	log.Debug("file split", "import_id", imp.ID, "rows", split.Total, "valid", split.Valid, "invalid", split.Invalid, "duplicate", split.Duplicate)

	if c.noWait {
		fmt.Fprintf(stdout, "import %s queued: %s (%d to send, %d invalid, %d duplicate)\n", imp.ID, plural(split.Total, "row"), split.Valid, split.Invalid, split.Duplicate)
		fmt.Fprintf(stdout, "run the same command without --no-wait to wait for its report\n")
		return nil
	}
	if err := c.wait(ctx, st, rdb, imp.ID, stderr); err != nil {
		return err
	}
	imp, err = st.Import(ctx, imp.ID)
	if err != nil {
		return unfinished(err)
	}
	return c.finish(ctx, st, imp, stdout)
}
