package main

import (
	"context"
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
	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/notify"
	"github.com/propexo-importer/importer/internal/rdb"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/schedule"
	"github.com/propexo-importer/importer/internal/source"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

type runConfig struct {
	lag lagSetting
	// sourceAuth is the Authorization header for an https:// FILE, from
	// IMPORTER_SOURCE_AUTHORIZATION (a secret: never a flag).
	sourceAuth string
	// ssh is how an sftp:// FILE is reached: the agent, the key files and
	// known_hosts, from the environment as OpenSSH finds them.
	ssh fetch.SSHOptions
	// mapping is --mapping, the column mapping file, as given.
	mapping    string
	opts       importer.Options
	vendor     string
	rentDueDay string
	// mode, maxCreates, maxUpdates and staleAfter are the sync's flags, as
	// given.
	mode, maxCreates, maxUpdates, staleAfter string
	importID                                 string
	dryRun                                   bool
	retention                                time.Duration
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
	notify       notifySettings
	// targets are the --notify targets, parsed.
	targets []notify.Target
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
		Use:   "run FILE [FILE...]",
		Short: "Import a file of residents and wait for its report",
		Long: `run reads FILE (CSV, JSON array, NDJSON or an Excel workbook's sheet; a path,
- for standard input, or an https:// address), validates every row, enqueues
one submit task per valid row and waits until every row has an outcome,
showing progress. Then it prints the summary and the report's folder.

By default an import is a sync (--mode upsert): the residents of the rows'
integration are listed once, each row is matched on its first key
(--match-on), and only what changed is written: a matched resident whose
fields differ is updated, one that has them already is left unchanged, a row
that matches nobody is created. 'importer plan' shows that plan first.
Several files are imported one after the other, in order: two nights of a
roster, say.

Running the same command again is the same import: it sends nothing twice and
waits for (or re-prints) the same result; a sync's roster written again after
its import finished is the next night's import. Ctrl-C stops waiting; with
REDIS_URL set the import goes on in the workers (Ctrl-C says so when no other
worker serves the queue: it waits in Redis until one does).

Exit codes: 0 every row succeeded or was unchanged, 1 finished but some rows
did not, 2 bad usage, configuration or unreadable input, 3 could not finish
(Redis or the API unreachable, credentials rejected, a plan past
--max-creates or --max-updates), 130 interrupted.`,
		Example: `  importer run samples/residents.csv
  importer run samples/night-1.csv samples/night-2.csv
  importer run --vendor rentmanager --integration-id int_123 --property-id prop_9 \
      --rent-period monthly --rent-due-day 1 residents.csv
  REDIS_URL=redis://localhost:6379 importer run --no-wait residents.csv`,
		Args: atLeastOne("run", "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runFiles(cmd.Context(), args, g.waitingLogger(cmd, getenv, stderr), stdout, stderr)
		},
	}
	c.registerRunFlags(cmd.Flags(), getenv)
	c.notify.register(cmd.Flags(), getenv, "the import (each file's)")
	return cmd
}

// registerRunFlags adds run's flags (plan takes the same).
func (c *runConfig) registerRunFlags(f *pflag.FlagSet, getenv env) {
	c.sourceAuth = getenv("IMPORTER_SOURCE_AUTHORIZATION")
	c.ssh = sshOptions(getenv)
	c.jobs.Sources = fetch.Options{SSH: c.ssh}
	f.StringVar(&c.opts.Format, "format", "", "input format: csv, json, ndjson or xlsx (default: from the file's extension)")
	f.StringVar(&c.opts.Sheet, "sheet", "", "the sheet of an Excel workbook to read (default: the first)")
	f.StringVar(&c.opts.Delimiter, "delimiter", ",", "the character between a CSV file's fields: ; | or tab, say")
	f.StringVar(&c.mapping, "mapping", getenv("IMPORTER_MAPPING"), "a column mapping file (YAML): columns to fields, constants, value maps, date formats, a full name to split, columns to ignore, the match key, strict; 'importer mapping suggest FILE' writes a start "+envTag("IMPORTER_MAPPING"))
	f.StringVar(&c.vendor, "vendor", getenv("IMPORTER_VENDOR"), "vendor rules and create path: generic, rentmanager, propertyware_rest or buildium (a vendor's path takes only its own fields: the others are reported, not sent); default: with --integration-id and PROPEXO_API_KEY, the integration's vendor as the API lists it, else generic "+envTag("IMPORTER_VENDOR"))
	f.StringVar(&c.opts.IntegrationID, "integration-id", getenv("IMPORTER_INTEGRATION_ID"), "integration_id for rows that have none "+envTag("IMPORTER_INTEGRATION_ID"))
	f.StringVar(&c.opts.PropertyID, "property-id", getenv("IMPORTER_PROPERTY_ID"), "property_id for rows that have none "+envTag("IMPORTER_PROPERTY_ID"))
	f.StringVar(&c.opts.RentPeriod, "rent-period", getenv("IMPORTER_RENT_PERIOD"), "rent_period for rows that have none: monthly, weekly or daily, any case "+envTag("IMPORTER_RENT_PERIOD"))
	f.StringVar(&c.rentDueDay, "rent-due-day", getenv("IMPORTER_RENT_DUE_DAY"), "rent_due_day (1-31) for rows that have none "+envTag("IMPORTER_RENT_DUE_DAY"))
	f.DurationVar(&c.opts.Deadline, "deadline", importer.DefaultDeadline, "how long to follow a write that stays PENDING before its row is timed_out")
	f.BoolVar(&c.opts.Verify, "verify", false, "read every created resident back (by created_record_id, else by email or name) and fail the row if it is missing once the cache lag has passed (one or two more requests per row)")
	syncFlags(f, c, getenv)
	f.StringVar(&c.importID, "import-id", "", "the import's id (default: derived from the file's content and the options, so a re-run resumes)")
	f.DurationVar(&c.retention, "retention", envDuration(getenv, "IMPORTER_RETENTION", importer.DefaultRetention), "how long the rows (personal data) stay in Redis once the report is written "+envTag("IMPORTER_RETENTION"))
	f.IntVar(&c.maxField, "max-field-bytes", importer.DefaultLimits.MaxFieldBytes, "longest value read; a longer one makes its row invalid")
	f.IntVar(&c.maxRecord, "max-record-bytes", importer.DefaultLimits.MaxRecordBytes, "longest record read; a longer one is an invalid row")
	f.IntVar(&c.maxColumns, "max-columns", importer.DefaultLimits.MaxColumns, "most columns read; a wider header refuses the file")
	f.BoolVar(&c.dryRun, "dry-run", false, "validate the whole file and print what would be sent; send nothing, need no Redis")
	f.StringVar((*string)(&c.opts.Priority), "priority", "normal", "the import's share of the API budget while other imports run: high (twice a normal one's), normal or low (half)")
	f.BoolVar(&c.again, "again", false, "import a file whose content was imported before anew, as a new import (without it, run refuses, naming the earlier import)")
	f.DurationVar(&c.recoveryWait, "recovery-wait", importer.DefaultRecoveryWait, "when Redis lost an import this machine started, how long its recovery waits before looking its rows up (writes sent before the loss resolve meanwhile)")
	c.registerWorkFlags(f, getenv)
	pollFlags(f, &c.jobs)
	f.IntVar(&c.jobs.Window, "window", jobs.DefaultWindow, "rows of an import in flight at once in this process's workers: more are queued as rows resolve, so a big file never floods Redis")
	f.StringVar(&c.sandboxLatency, "sandbox-latency", sandbox.DefaultLatency, "how long writes stay PENDING in the in-process sandbox (fixed:2s, uniform:1s-5s, lognormal:median=2s,p99=30s)")
	f.Float64Var(&c.sandboxFailureRate, "sandbox-failure-rate", 0, "share of writes (0-1) the in-process sandbox fails")
}

// syncFlags adds the flags of a sync: what is done with rows that match
// existing residents, what they match on, and the guards (run and plan).
func syncFlags(f *pflag.FlagSet, c *runConfig, getenv env) {
	f.StringVar(&c.mode, "mode", envOr(getenv, "IMPORTER_MODE", string(importer.ModeUpsert)), "upsert (update matched residents that differ, create the rest), create-missing (create only rows that match nobody), update (update matched residents; the rest end not_found) or create (create every row, look nothing up) "+envTag("IMPORTER_MODE"))
	f.StringVar(&c.opts.MatchOn, "match-on", importer.DefaultMatchOn, "keys that match a row to an existing resident, in the order tried: x_id, email_1 (any case), name+dob (first and last name with the date of birth)")
	f.BoolVar(&c.opts.BlankClears, "blank-clears", false, "an empty cell of a matched row clears the resident's value where the API's update can (an empty string: plain text fields such as middle_name, address_2, notes; never a name, an email, a date, a code or a rent term); without it, an empty cell never erases anything")
	f.StringVar(&c.staleAfter, "stale-after", "30d", "a listed resident the API has not seen in the PMS for this long (its last_seen) is taken as gone: no match for a row, and not in missing.csv (Propexo's advice: 30 days); a number of days, a duration, or never")
	f.StringVar(&c.maxCreates, "max-creates", "", "refuse the import, before anything is written, when its plan creates more rows than this: a number (500) or a share of the file's rows (10%)")
	f.StringVar(&c.maxUpdates, "max-updates", "", "refuse the import, before anything is written, when its plan updates more rows than this: a number or a share (10%)")
	ledgerFlag(f, &c.jobs)
}

// ledgerFlag adds --ledger-retention.
func ledgerFlag(f *pflag.FlagSet, cfg *jobs.Config) {
	f.DurationVar(&cfg.LedgerRetention, "ledger-retention", importer.DefaultLedgerRetention, "how long the ledger remembers a resident the importer wrote (by hashed key, no personal data), so the next import finds it while the API's copy lags the PMS")
}

// lagSetting is --cache-lag, read when the command runs (so that a bad
// $IMPORTER_CACHE_LAG is told like a bad flag).
type lagSetting struct{ value string }

func (l *lagSetting) register(f *pflag.FlagSet, getenv env) {
	f.StringVar(&l.value, "cache-lag", envOr(getenv, "IMPORTER_CACHE_LAG", "0s"), "how long after a write the API shows its record: a duration or 'sync' (only after the integration's next sync), for every vendor or per vendor (buildium=sync,rentmanager=0s,30s); until then a resident not found is no proof, so the searches for a lost answer and --verify's read-back last past it "+envTag("IMPORTER_CACHE_LAG"))
}

// apply sets the lag in cfg.
func (l lagSetting) apply(cfg *jobs.Config) error {
	lag, err := importer.ParseCacheLag(l.value)
	if err != nil {
		return usageError("--cache-lag: %v", err)
	}
	cfg.CacheLag = lag
	return nil
}

// pollFlags adds the flags of how writes are followed: the status checks'
// delays and the retries of requests that failed.
func pollFlags(f *pflag.FlagSet, cfg *jobs.Config) {
	f.DurationVar(&cfg.PollInitial, "poll-initial", importer.DefaultPollInitial, "delay before a write's first status check, before anything is learned; later checks back off")
	f.DurationVar(&cfg.PollMax, "poll-max", importer.DefaultPollMax, "longest delay between two status checks of a write")
	retryFlag(f, cfg)
}

// retryFlag adds --max-retries.
func retryFlag(f *pflag.FlagSet, cfg *jobs.Config) {
	f.IntVar(&cfg.MaxRetry, "max-retries", importer.DefaultMaxRetry, "retries of a request after a 5xx or network error before its row fails (waits for a rate limit do not count)")
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
	ceilingFlag(f, &c.jobs)
	c.limits.register(f, getenv)
	c.lag.register(f, getenv)
}

// prepared is a file that has been read once (jobs.Inspect): its import's
// id and where its report goes.
type prepared struct {
	file      jobs.Inspected
	id        string
	reportDir string
}

// sshOptions finds what an sftp:// FILE signs in with, as OpenSSH would:
// the agent (SSH_AUTH_SOCK), then IMPORTER_SSH_KEY or ~/.ssh's usual keys;
// the server's key is checked against IMPORTER_SSH_KNOWN_HOSTS or
// ~/.ssh/known_hosts.
func sshOptions(getenv env) fetch.SSHOptions {
	o := fetch.SSHOptions{AgentSocket: getenv("SSH_AUTH_SOCK")}
	home, _ := os.UserHomeDir()
	if key := getenv("IMPORTER_SSH_KEY"); key != "" {
		o.KeyFiles = []string{key}
	} else if home != "" {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			o.KeyFiles = append(o.KeyFiles, filepath.Join(home, ".ssh", name))
		}
	}
	if known := getenv("IMPORTER_SSH_KNOWN_HOSTS"); known != "" {
		o.KnownHosts = []string{known}
	} else if home != "" {
		o.KnownHosts = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	return o
}

// stdinName is the FILE argument that reads standard input.
const stdinName = "-"

// spool copies a stream that can be read only once — standard input, a
// named pipe, a file at an https:// address — into a private temporary
// file, so that the import can read it twice (once to check and hash it,
// once to split it). Regular files are read where they are; devices,
// sockets and terminals are refused. It returns the path to read and what
// removes the copy.
func spool(ctx context.Context, path string, remote fetch.Options) (string, func(), error) {
	noop := func() {}
	var in io.ReadCloser
	shown := path
	if fetch.IsURL(path) {
		shown = fetch.Redact(path)
		var err error
		if in, err = fetch.Open(ctx, path, remote); err != nil {
			return "", nil, usageError("%v", err)
		}
		defer in.Close()
	} else if path == stdinName {
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
	copied, err := fetch.Spool(in, "importer-input-*")
	var read *fetch.ReadError
	switch {
	case errors.As(err, &read):
		return "", nil, usageError("cannot read %s: %v", shown, read.Err)
	case err != nil:
		return "", nil, unfinished(fmt.Errorf("error keeping a copy of %s: %w", shown, err))
	}
	return copied, func() { os.Remove(copied) }, nil
}

// prepare reads the API key's file, if any, then the file once (see scan),
// and settles the import's id and options. A stream (standard input, a
// pipe) is first copied to a private temporary file, which cleanup removes.
func (c *runConfig) prepare(ctx context.Context, path string) (p prepared, cleanup func(), err error) {
	cleanup = func() {}
	if err := c.api.resolveKey(); err != nil {
		return p, cleanup, err
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return p, cleanup, usageError("%s is a folder, not a file", path)
	}
	if path == stdinName && c.opts.Format == "" {
		return p, cleanup, usageError("reading standard input: give its format with --format csv, json, ndjson or xlsx")
	}
	shown, named := path, path
	if fetch.IsURL(path) {
		shown, named = fetch.Redact(path), fetch.Name(path)
	}
	format, err := source.FormatOf(named, c.opts.Format)
	if err != nil {
		return p, cleanup, usageError("%v", err)
	}
	readPath, cleanup, err := spool(ctx, path, fetch.Options{Authorization: c.sourceAuth, SSH: c.ssh})
	if err != nil {
		return p, func() {}, err
	}
	p, err = c.prepareFile(ctx, shown, readPath, format)
	return p, cleanup, err
}

func (c *runConfig) prepareFile(ctx context.Context, path, readPath, format string) (prepared, error) {
	var p prepared
	c.opts.Format = format
	c.opts.Vendor = importer.Vendor(c.vendor)
	if c.vendor == "" {
		v, err := c.integrationVendor(ctx)
		if err != nil {
			return p, err
		}
		c.opts.Vendor = v
	}
	c.opts.Mode = importer.Mode(c.mode)
	if c.mapping != "" && c.opts.Mapping == nil {
		m, err := schedule.LoadMapping(c.mapping)
		if err != nil {
			return p, usageError("--mapping: %v", err)
		}
		c.opts.Mapping = &m
	}
	var err error
	if c.opts.MaxCreates, c.opts.MaxUpdates, err = importer.ParseGuards(c.maxCreates, c.maxUpdates); err != nil {
		return p, optionError(err)
	}
	if c.opts.StaleAfter, err = importer.ParseStaleAfter(c.staleAfter); err != nil {
		return p, usageError("--stale-after %v", err)
	}
	if c.rentDueDay != "" {
		day, err := importer.ParseRentDueDay(c.rentDueDay)
		if err != nil {
			return p, usageError("--rent-due-day: %v", err)
		}
		c.opts.RentDueDay = day
	}
	opts, err := c.opts.Normalize()
	if err != nil {
		return p, optionError(err)
	}
	if err := validateCeiling(c.jobs); err != nil {
		return p, err
	}
	if err := c.limits.validate(); err != nil {
		return p, err
	}
	if err := c.lag.apply(&c.jobs); err != nil {
		return p, err
	}
	if c.targets, err = c.notify.targets(); err != nil {
		return p, err
	}
	if err := c.notify.apply(&c.jobs); err != nil {
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
			return p, usageError("--import-id: %v", err)
		}
	}
	if p.reportDir, err = filepath.Abs(c.reportDir); err != nil {
		return p, usageError("--report-dir: %v", err)
	}
	name := filepath.Base(path)
	if path == stdinName {
		name = "stdin"
	}
	p.file, err = jobs.Inspect(ctx, jobs.Input{Path: readPath, Shown: path, Name: name, Options: opts, Limits: c.inputLimits()})
	if err != nil {
		return p, startError(err)
	}
	p.id = c.importID
	if p.id == "" {
		p.id = p.file.ID()
	}
	return p, nil
}

// inputLimits bound what a record of the file may hold.
func (c *runConfig) inputLimits() importer.Limits {
	return importer.Limits{MaxFieldBytes: c.maxField, MaxRecordBytes: c.maxRecord, MaxColumns: c.maxColumns}
}

// startError turns what Inspect and Start refuse into the exit codes: the
// file or the command line is wrong (2), or the import could not be
// started (3).
func startError(err error) error {
	var (
		input   *jobs.InputError
		content *jobs.ContentImportedError
		taken   *jobs.IDTakenError
		lost    *jobs.LostFinishedError
		exit    *exitError
	)
	switch {
	case errors.As(err, &exit):
		return err
	case errors.Is(err, context.Canceled):
		return &exitError{code: exitInterrupted, err: errors.New(strings.TrimSuffix(err.Error(), ": "+context.Canceled.Error()))}
	case errors.As(err, &input):
		return usageError("%v", err)
	case errors.As(err, &content):
		return usageError("the content of %s was imported already, as import %s (%s, started %s, %s): nothing was sent; wait for that import with the command that started it, or run again with --again to import the file anew",
			content.File, content.Other.ID, content.Other.State(), content.Other.CreatedAt.Local().Format(time.RFC3339), outcomeCounts(content.Progress))
	case errors.As(err, &taken):
		return usageError("%v; give another --import-id", err)
	case errors.As(err, &lost):
		code := exitOK
		if !lost.Summary.AllSucceeded() {
			code = exitSomeFailed
		}
		return &exitError{code: code, err: fmt.Errorf("%v (%s; its report stays in its folder). To send the file anyway, delete the import first: importer delete %s",
			err, outcomeCounts(importer.Progress{Total: lost.Summary.Total, Counts: lost.Summary.Counts}), lost.Summary.ImportID)}
	}
	return unfinished(err)
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

func (c *runConfig) run(ctx context.Context, path string, log *slog.Logger, stdout, stderr io.Writer) error {
	// The command's own checks of the API (the key, the integration's
	// vendor, the published limits) are counted, and put in the summary
	// of the import they were sent for.
	checking, checks := importer.WithRequestTally(ctx)
	p, cleanup, err := c.prepare(checking, path)
	defer cleanup()
	if err != nil {
		return err
	}
	if c.dryRun {
		return c.dryRunImport(ctx, p, stdout, stderr)
	}
	if err := checkWritable(p.reportDir); err != nil {
		return err
	}

	conn, err := connectRedis(ctx, c.redisURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	st := store.New(conn.Client)
	imports := commandImports(conn, st, p.reportDir, log)

	if conn.Embedded && (c.noWait || c.workers == 0) {
		return usageError("--no-wait and --workers 0 need REDIS_URL: the in-process Redis is gone when run exits")
	}
	stop := func() {}
	defer func() { stop() }()
	notifyRefs, err := saveTargets(ctx, st, c.targets)
	if err != nil {
		return unfinished(err)
	}
	started, err := imports.Start(checking, jobs.StartRequest{File: p.file, ImportID: c.importID, Again: c.again, ReportDir: p.reportDir,
		Retention: c.retention, RecoveryWait: c.recoveryWait, Notify: notifyRefs,
		// The in-process sandbox starts empty with every run: nothing
		// of an earlier run's can exist in it.
		Trace: receipts{dir: p.reportDir, redis: conn.Addr, fresh: conn.Embedded && c.api.key == "" && c.api.url == ""},
		// The API is checked (and this process's workers started)
		// before the import is stored: a rejected key or a wrong URL
		// leaves nothing behind.
		Ready: func(ctx context.Context) error {
			workers, err := c.localWorkers(ctx, conn, st, log, stderr)
			if err == nil {
				stop = workers
			}
			return err
		}})
	if err != nil {
		return startError(err)
	}
	imp := started.Import
	if !started.Finished {
		imports.CountChecks(ctx, imp.ID, checks())
	}
	switch {
	case started.Finished:
		fmt.Fprintf(stderr, "import %s already finished; here is its result again\n", imp.ID)
		return c.finish(ctx, imports, st, imp, stdout)
	case started.Created && imp.Recovery != nil:
		fmt.Fprintf(stderr, "import %s was started on %s, but Redis at %s no longer has it (it lost its data: restarted without persistence, or flushed); recovering it: each row is looked up in the API before it is sent, from %s, so none is created twice\n",
			imp.ID, imp.Recovery.FirstStartedAt.Local().Format(time.RFC3339), conn.Addr, imp.Recovery.LookupFrom.Local().Format(time.TimeOnly))
	case started.Resumed != "":
		fmt.Fprintf(stderr, "import %s was stopped (%s); resuming it\n", imp.ID, started.Resumed)
	case !started.Created:
		fmt.Fprintf(stderr, "import %s is already under way; resuming it\n", imp.ID)
	}
	sayUnsent(stderr, p.file)
	split := started.Split
	log.Debug("file split", "import_id", imp.ID, "rows", split.Total, "valid", split.Valid, "invalid", split.Invalid, "duplicate", split.Duplicate)

	if c.noWait {
		fmt.Fprintf(stdout, "import %s queued: %s (%d to send, %d invalid, %d duplicate)\n", imp.ID, plural(split.Total, "row"), split.Valid, split.Invalid, split.Duplicate)
		fmt.Fprintf(stdout, "run the same command without --no-wait to wait for its report\n")
		return nil
	}
	if err := c.wait(ctx, imports, st, conn, imp.ID, stderr); err != nil {
		return err
	}
	if c.workers > 0 {
		c.awaitNotifications(ctx, imports, imp.ID, conn.Embedded, stderr)
	}
	imp, err = st.Import(ctx, imp.ID)
	if err != nil {
		return unfinished(err)
	}
	return c.finish(ctx, imports, st, imp, stdout)
}

// notifyPatience is how long a run whose own workers deliver its import's
// notifications waits for them before it exits.
const notifyPatience = 30 * time.Second

// awaitNotifications lets this process's workers deliver the notifications
// of the import's end before the run exits and stops them; past the
// patience it says what is left (the workers of the Redis retry them; the
// in-process Redis goes with the run).
func (c *runConfig) awaitNotifications(ctx context.Context, imports *jobs.Imports, id string, embedded bool, stderr io.Writer) {
	deadline := time.Now().Add(notifyPatience)
	for {
		pending, err := imports.NotificationsPending(ctx, id)
		if err != nil || pending == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if embedded {
				fmt.Fprintf(stderr, "%s not delivered yet, and lost with the in-process Redis when this run exits; the workers' log says why\n", plural(pending, "notification"))
			} else {
				fmt.Fprintf(stderr, "%s not delivered yet; 'importer worker' retries them\n", plural(pending, "notification"))
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runFiles imports files one after the other, in order. A file whose import
// could not finish (exit 2, 3 or 130) stops the others; the exit code is the
// worst of the files'.
func (c *runConfig) runFiles(ctx context.Context, paths []string, log *slog.Logger, stdout, stderr io.Writer) error {
	if len(paths) > 1 && c.importID != "" {
		return usageError("--import-id names one import: give one file with it")
	}
	var worst error
	for i, path := range paths {
		if len(paths) > 1 {
			fmt.Fprintf(stderr, "file %d of %d: %s\n", i+1, len(paths), path)
		}
		err := c.run(ctx, path, log, stdout, stderr)
		var exit *exitError
		switch {
		case err == nil:
		case errors.As(err, &exit) && exit.code == exitSomeFailed:
			worst = err
		default:
			return err
		}
	}
	return worst
}

// optionError names a bad option by the flag that sets it.
func optionError(err error) error {
	var opt *importer.OptionError
	if errors.As(err, &opt) {
		return usageError("--%s: %v", strings.ReplaceAll(opt.Field, "_", "-"), opt.Err)
	}
	return usageError("%v", err)
}

// sayUnsent names, before anything is sent, the file's columns that no
// field reads or that the vendor does not take: a renamed column is seen
// the night it is renamed, not in a report nobody reads.
func sayUnsent(w io.Writer, f jobs.Inspected) {
	if cols := f.Unsent.Unknown; len(cols) > 0 {
		them := pick(len(cols), "it", "them")
		fmt.Fprintf(w, "%s: the %s %s %s no field of a resident: never sent (kept in the report); map %s with --mapping to send %s\n",
			f.Shown, pick(len(cols), "column", "columns"), strings.Join(cols, ", "), pick(len(cols), "is", "are"), them, them)
	}
	if cols := f.Unsent.NotTaken; len(cols) > 0 {
		fmt.Fprintf(w, "%s: %s does not take %s, never sent (kept in the report): %s\n",
			f.Shown, f.Options.Vendor, pick(len(cols), "this column", "these columns"), strings.Join(cols, ", "))
	}
}

// pick is one or many, by n.
func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// integrationVendor is the vendor of an import given no --vendor: with
// --integration-id and an API key, the integration's, as the API lists
// it, so that the rows are checked against its rules before anything is
// sent; else generic. An API that cannot say is an error, never a guess:
// the vendor is part of what an import writes, and of its id.
func (c *runConfig) integrationVendor(ctx context.Context) (importer.Vendor, error) {
	if c.opts.IntegrationID == "" || c.api.key == "" {
		return importer.VendorGeneric, nil
	}
	url, key, err := c.api.endpoint()
	if err != nil {
		return "", err
	}
	// (Checked first as every command checks the API: a wrong key or URL
	// is told as such.)
	client, err := newAPIClient(ctx, url, key, c.api.timeout, nil, true)
	if err != nil {
		return "", err
	}
	c.api.checked = true
	vendor, ok, err := client.IntegrationVendor(ctx, c.opts.IntegrationID)
	switch {
	case err != nil:
		return "", unfinished(fmt.Errorf("cannot learn the vendor of integration %s from the API at %s (%v): give --vendor", c.opts.IntegrationID, rdb.Redact(url), err))
	case !ok:
		return "", usageError("--integration-id %s: the API at %s lists no such integration", c.opts.IntegrationID, rdb.Redact(url))
	}
	return importer.VendorOfIntegration(vendor), nil
}
