package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/pflag"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/apispec"
	"github.com/propexo-importer/importer/internal/metrics"
	"github.com/propexo-importer/importer/internal/poll"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/ratelimit"
	"github.com/propexo-importer/importer/internal/rdb"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/internal/webhook"
	"github.com/propexo-importer/importer/jobs"
)

// reportWriter writes reports from the store into dir, this process's own
// report folder: never into a folder named in Redis, which anyone who can
// write to that Redis could choose. A scheduled import's reports go into
// the subfolder its schedule names, inside dir.
type reportWriter struct {
	store *store.Store
	dir   string
}

// The Redis store is the lifecycle's store, and reportWriter its reports.
var (
	_ jobs.Store   = (*store.Store)(nil)
	_ jobs.Reports = reportWriter{}
)

func (w reportWriter) WriteReport(ctx context.Context, imp importer.Import, missing []importer.ResidentRecord) (string, error) {
	sum, err := w.store.Summary(ctx, imp.ID)
	if err != nil {
		return "", err
	}
	if sum.FinishedAt.IsZero() {
		sum.FinishedAt = time.Now().UTC()
		sum.Seconds = sum.FinishedAt.Sub(sum.StartedAt).Round(time.Millisecond).Seconds()
	}
	return report.Write(w.folder(imp), sum, imp.Columns, w.store.Rows(ctx, imp.ID, imp.Total), missing)
}

// NewPlan starts the import's plan.csv in its report folder here.
func (w reportWriter) NewPlan(imp importer.Import) (jobs.PlanSink, error) {
	return report.NewPlan(w.folder(imp), imp.ID)
}

// Written returns the import's report folder here, and whether it holds
// the report of the import's last round (a worker elsewhere wrote its own).
func (w reportWriter) Written(imp importer.Import) (string, bool) {
	dir := report.Dir(w.folder(imp), imp.ID)
	info, err := os.Stat(filepath.Join(dir, report.SummaryFile))
	return dir, err == nil && !info.ModTime().Before(imp.FinishedAt.Add(-time.Second))
}

// receipts are the traces of the imports this machine started (see
// jobs.Trace): a receipt in the report folder of each.
type receipts struct {
	dir, redis string
	// fresh: nothing this machine started before can exist in the API
	// (the in-process sandbox starts empty), so no receipt is read.
	fresh bool
}

func (r receipts) Started(id string) (time.Time, string, bool, error) {
	if r.fresh {
		return time.Time{}, "", false, nil
	}
	rc, ok, err := report.ReadReceipt(r.dir, id)
	if err != nil {
		return time.Time{}, "", false, usageError("%v", err)
	}
	return rc.StartedAt, rc.Epoch, ok, nil
}

func (r receipts) Record(imp importer.Import, created bool) error {
	if _, known, err := report.ReadReceipt(r.dir, imp.ID); err == nil && known && !created {
		return nil
	}
	started := imp.CreatedAt
	if imp.Recovery != nil {
		started = imp.Recovery.FirstStartedAt
	}
	if err := report.WriteReceipt(r.dir, report.Receipt{ImportID: imp.ID, File: imp.File, FileSHA256: imp.FileSHA256,
		StartedAt: started, Epoch: imp.Epoch, Redis: r.redis}); err != nil {
		return usageError("--report-dir %s: %v", relative(r.dir), err)
	}
	return nil
}

// Finished reads the summary.json beside the receipt, if the import
// finished (and was not deleted since: delete removes the receipt).
func (r receipts) Finished(id string) (importer.Summary, bool) {
	if r.fresh {
		return importer.Summary{}, false
	}
	if _, ok, err := report.ReadReceipt(r.dir, id); err != nil || !ok {
		return importer.Summary{}, false
	}
	return report.ReadFinished(r.dir, id)
}

// Forget removes a deleted import's receipt: it is forgotten, not lost.
func (r receipts) Forget(id string) error {
	report.RemoveReceipt(r.dir, id)
	return nil
}

// commandImports is the lifecycle as a command uses it: no API, the
// command's report folder (reportDir "" for none: the workers write the
// reports).
func commandImports(conn *rdb.Redis, st *store.Store, reportDir string, log *slog.Logger) *jobs.Imports {
	var reports jobs.Reports
	if reportDir != "" {
		reports = reportWriter{store: st, dir: reportDir}
	}
	return jobs.NewImports(nil, st, asynqClient(conn), reports, log, jobs.Config{})
}

// folder is where the import's report folder goes: dir, or the schedule's
// subfolder inside it (only a local name is taken).
func (w reportWriter) folder(imp importer.Import) string {
	if sub := imp.ReportSubdir; sub != "" && filepath.IsLocal(sub) {
		return filepath.Join(w.dir, sub)
	}
	return w.dir
}

// hookSettings are the flags of the webhook receiver.
type hookSettings struct {
	addr     string
	path     string
	secret   string
	fallback time.Duration
}

func (hs *hookSettings) register(fs *pflag.FlagSet, getenv env, addrFlag, def string) {
	fs.StringVar(&hs.addr, addrFlag, envOr(getenv, "IMPORTER_WEBHOOKS_ADDR", def), "address to receive Propexo webhooks on, e.g. :8081 (behind your TLS proxy) "+envTag("IMPORTER_WEBHOOKS_ADDR"))
	fs.StringVar(&hs.path, "webhooks-path", "/webhooks/propexo", "path the webhooks are POSTed to")
	hs.secret = getenv("PROPEXO_WEBHOOK_SECRET")
}

func (hs *hookSettings) registerFallback(fs *pflag.FlagSet) {
	fs.DurationVar(&hs.fallback, "poll-fallback", 5*time.Minute, "with webhooks on, the first status check comes this long after a submit: polling is only a fallback")
}

func (hs *hookSettings) validate() error {
	if hs.addr == "" {
		return nil
	}
	if hs.secret == "" {
		return usageError("webhooks need PROPEXO_WEBHOOK_SECRET, the secret their signatures are checked with")
	}
	if !strings.HasPrefix(hs.path, "/") {
		return usageError("--webhooks-path %q: start it with /", hs.path)
	}
	return nil
}

// limits are the flags that size the shared rate limit.
type limits struct {
	perWindow int
	window    time.Duration
	// capped is true when the user set the limit (flag or environment):
	// it then caps what the API announces.
	capped bool
	fs     *pflag.FlagSet
}

func (l *limits) register(fs *pflag.FlagSet, getenv env) {
	def := 150
	if v, err := strconv.Atoi(getenv("PROPEXO_RATE_LIMIT")); err == nil {
		def, l.capped = v, true
	}
	l.fs = fs
	fs.IntVar(&l.perWindow, "rate-limit", def, "most API requests per --rate-window for every worker together; without it the importer follows the limit the API announces in x-ratelimit-limit (150 a minute until the first answer), with it never more (0: no limit, for an API that has none) "+envTag("PROPEXO_RATE_LIMIT"))
	fs.DurationVar(&l.window, "rate-window", time.Minute, "the API's rate-limit window")
}

func (l *limits) validate() error {
	if l.perWindow < 0 {
		return usageError("--rate-limit %d: use 1 or more, or 0 for no limit", l.perWindow)
	}
	if l.window < time.Second {
		return usageError("--rate-window %v: use 1s or more", l.window)
	}
	return nil
}

// limiter returns the shared rate limit, or nil with --rate-limit 0.
func (l *limits) limiter(conn *rdb.Redis, log *slog.Logger) *ratelimit.Limiter {
	if l.perWindow == 0 {
		return nil
	}
	cfg := ratelimit.Config{Limit: l.perWindow, Period: l.window, Log: log}
	if l.capped || l.fs != nil && l.fs.Changed("rate-limit") {
		cfg.Max = l.perWindow
	}
	return ratelimit.New(conn.Client, cfg)
}

// workers is an Asynq server running the importer's handlers.
type workers struct {
	srv      *asynq.Server
	client   *asynq.Client
	handlers *jobs.Imports
	// stopWatching ends the watch for a new Redis primary.
	stopWatching context.CancelFunc
}

func startWorkers(conn *rdb.Redis, api importer.WriteAPI, st *store.Store, reportDir string, concurrency int, log *slog.Logger, cfg jobs.Config) (*workers, error) {
	client := asynq.NewClientFromRedisClient(conn.Client)
	if cfg.Planner == nil {
		pc := poll.Config{Initial: cfg.PollInitial, Max: cfg.PollMax, Batch: 500 * time.Millisecond}
		if l, ok := cfg.Limiter.(*ratelimit.Limiter); ok {
			pc.Scarce = l.Scarce // checks planned frugally while requests wait for the budget
		}
		cfg.Planner = poll.New(conn.Client, pc)
	}
	h := jobs.NewImports(api, st, client, reportWriter{store: st, dir: reportDir}, log, cfg)
	mux := asynq.NewServeMux()
	h.Register(mux)
	scfg := jobs.ServerConfig(concurrency, rdb.Logger{L: log})
	scfg.ErrorHandler = h
	srv := asynq.NewServerFromRedisClient(conn.Client, scfg)
	if err := srv.Start(mux); err != nil {
		return nil, fmt.Errorf("error starting the workers: %w", err)
	}
	watch, stopWatching := context.WithCancel(context.Background())
	go h.WatchRedis(watch, watchRedisEvery)
	return &workers{srv: srv, client: client, handlers: h, stopWatching: stopWatching}, nil
}

// watchRedisEvery is how often workers look for a new Redis primary (see
// jobs.Imports.WatchRedis).
const watchRedisEvery = 5 * time.Second

// stop finishes the tasks in flight (or puts them back on the queue).
func (w *workers) stop() {
	w.stopWatching()
	w.srv.Shutdown()
}

// webhookServer serves the webhook receiver on addr at path.
func webhookServer(addr, path, secret string, h *jobs.Imports, log *slog.Logger) (*http.Server, net.Listener, error) {
	rc, err := webhook.NewReceiver(secret, h.ApplyEvent, log)
	if err != nil {
		return nil, nil, usageError("%v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, usageError("cannot listen for webhooks on %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST "+path, rc)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go serveInBackground(srv, ln, log, "webhooks")
	return srv, ln, nil
}

// serveInBackground serves srv on ln until it is closed, and says why it
// stopped when something else stopped it.
func serveInBackground(srv *http.Server, ln net.Listener, log *slog.Logger, what string) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("stopped serving "+what, "addr", ln.Addr().String(), "error", err)
	}
}

// serveUntilDone serves srv on ln until ctx ends, then shuts it down,
// giving requests in flight five seconds and closing what is left after
// them: the server was told to stop, so a connection still open then (a
// slow request, or one a client opened and never used) is no failure.
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return unfinished(err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); errors.Is(err, context.DeadlineExceeded) {
		_ = srv.Close() // the grace period is over: cut what remains
	} else if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return unfinished(err)
	}
	return nil
}

// serveMetrics serves Prometheus metrics at /metrics on addr.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usageError("--metrics-addr %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go serveInBackground(srv, ln, log, "metrics")
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return srv, nil
}

func metricsFlag(fs *pflag.FlagSet, getenv env, addr *string) {
	fs.StringVar(addr, "metrics-addr", getenv("IMPORTER_METRICS_ADDR"), "serve Prometheus metrics at /metrics on this address, e.g. :9090 "+envTag("IMPORTER_METRICS_ADDR"))
}

// embeddedSandbox is a sandbox served inside this process.
type embeddedSandbox struct {
	url, key string
	srv      *http.Server
	sb       *sandbox.Server
	// state is the file the sandbox's residents are kept in between
	// commands; "" keeps them in memory only. A failure to keep them is
	// told on stderr.
	state  string
	stderr io.Writer
}

// sandboxState is the file, in the report folder, where the in-process
// sandbox keeps its residents between two commands, so that a second
// night's roster finds the first night's residents there.
const sandboxState = ".sandbox-residents.json"

// startSandbox starts the in-process sandbox; with a state file it starts
// with the residents kept there and keeps them there when it closes.
func startSandbox(cfg sandbox.Config, state string, stderr io.Writer) (*embeddedSandbox, error) {
	key := make([]byte, 16)
	rand.Read(key)
	cfg.APIKey = hex.EncodeToString(key)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("error starting the in-process sandbox: %w", err)
	}
	cfg.OnViolation = func(v apispec.Violation) { fmt.Fprintf(stderr, "error: %s: %v\n", sandboxViolation, v) }
	sb := sandbox.New(cfg)
	if state != "" {
		if f, err := os.Open(state); err == nil {
			err = sb.LoadResidents(f)
			f.Close()
			if err != nil {
				ln.Close()
				return nil, usageError("%s: %v; remove it to start the in-process sandbox empty", relativeFile(state), err)
			}
		}
	}
	sb.Start()
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go serveInBackground(srv, ln, slog.New(slog.DiscardHandler), "the in-process sandbox")
	return &embeddedSandbox{url: "http://" + ln.Addr().String(), key: cfg.APIKey, srv: srv, sb: sb, state: state, stderr: stderr}, nil
}

func (s *embeddedSandbox) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx) // the process ends: requests still open end with it
	s.sb.Close()
	if s.state != "" {
		if err := report.WriteAtomically(filepath.Dir(s.state), filepath.Base(s.state), s.sb.SaveResidents); err != nil {
			fmt.Fprintf(s.stderr, "warning: the in-process sandbox's residents were not kept: %v\n", err)
		}
	}
}

// connectRedis connects to Redis (or starts the in-process one for an empty
// URL); a bad URL is a usage error, an unreachable server exit code 3.
func connectRedis(ctx context.Context, url string) (*rdb.Redis, error) {
	conn, err := rdb.Connect(ctx, url)
	if errors.Is(err, rdb.ErrBadURL) {
		return nil, usageError("%v", err)
	}
	if err != nil {
		return nil, unfinished(err)
	}
	return conn, nil
}

// newAPIClient builds the API client and, when probe is set, checks that the
// API answers and takes the key, with one cheap request (see probeAPI).
func newAPIClient(ctx context.Context, url, key string, timeout time.Duration, limiter *ratelimit.Limiter, probe bool) (*propexo.Client, error) {
	cfg := propexo.Config{BaseURL: url, APIKey: key, Timeout: timeout}
	if limiter != nil {
		cfg.OnAnswer = limiter.Observe
	}
	client, err := propexo.New(cfg)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if !probe {
		return client, nil
	}
	if err := probeAPI(ctx, client, limiter); err != nil {
		return nil, err
	}
	return client, nil
}

// probeAPI checks that the API answers and takes the key, with one cheap
// request: a rejected key is exit code 3 with what to fix, an API out of
// reach (or answering 5xx) exit code 3 too; a 404, or an answer that is not
// the API's JSON, says the base URL is wrong (exit code 2).
func probeAPI(ctx context.Context, client *propexo.Client, limiter *ratelimit.Limiter) error {
	if limiter != nil {
		if err := limiter.Take(ctx, 1); err != nil {
			if _, ok := ratelimit.IsThrottled(err); ok {
				// The budget is spent for now; the workers will wait
				// for it. Skip the check rather than wait here.
				return nil
			}
			return unfinished(err)
		}
	}
	_, err := client.FindResidents(ctx, importer.ResidentQuery{IntegrationID: "importer-connectivity-check", Email: "nobody@example.invalid"})
	var apiErr *importer.APIError
	if errors.As(err, &apiErr) {
		switch {
		case apiErr.Kind == importer.KindNotFound:
			// The list of residents always exists: a 404 means the base
			// URL is not the API's (a /v1 too many, another server).
			return usageError("the API at %s answered 404 to GET /v1/residents/: that is not the API's base URL (give it without /v1, e.g. %s)", client.BaseURL(), defaultAPIURL)
		case apiErr.Status == http.StatusOK:
			return usageError("the server at %s answered GET /v1/residents/ with something that is not the API's JSON: is it the Propexo API?", client.BaseURL())
		}
		switch apiErr.Kind {
		case importer.KindUnauthorized:
			return &exitError{code: exitUnfinished, err: &keyRejectedError{fmt.Errorf("the API at %s rejected the API key (%d): check PROPEXO_API_KEY", client.BaseURL(), apiErr.Status)}}
		case importer.KindUnavailable:
			return unfinished(fmt.Errorf("cannot reach the API at %s: %v", client.BaseURL(), apiErr))
		}
	}
	return nil
}

// keyRejectedError is a probe's finding that the API refused the key: no
// retry helps.
type keyRejectedError struct{ error }

func (e *keyRejectedError) Unwrap() error { return e.error }

// probeUntilAnswered checks the API again with growing waits (1s up to a
// minute) until it answers, saying each time that it does not yet, and once
// that it does. A worker starts before the API answers: its tasks wait and
// retry meanwhile.
func probeUntilAnswered(ctx context.Context, client *propexo.Client, limiter *ratelimit.Limiter, log *slog.Logger) {
	for wait := time.Second; ; wait = min(2*wait, time.Minute) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		err := probeAPI(ctx, client, limiter)
		var rejected *keyRejectedError
		switch {
		case err == nil:
			log.Info("the API answers", "api", client.BaseURL())
			return
		case errors.As(err, &rejected):
			log.Error("the API rejected the API key: no row can be sent until PROPEXO_API_KEY is fixed and the worker restarted", "api", client.BaseURL())
			return
		case ctx.Err() != nil:
			return
		}
		log.Warn("the API does not answer yet; checking again", "api", client.BaseURL(), "error", err, "next_check_in", min(2*wait, time.Minute).String())
	}
}

// ceilingFlag adds --max-in-flight-per-integration.
func ceilingFlag(f *pflag.FlagSet, cfg *jobs.Config) {
	f.IntVar(&cfg.Ceilings.Default, "max-in-flight-per-integration", 0, "most writes in flight (sent, not resolved) per integration, across every import and worker (give every worker the same); 0: each integration's max_job_concurrency where the API publishes one, else no ceiling")
}

// validateCeiling refuses a negative ceiling.
func validateCeiling(cfg jobs.Config) error {
	if cfg.Ceilings.Default < 0 {
		return usageError("--max-in-flight-per-integration %d: use 1 or more, or 0 for the integrations' published limits", cfg.Ceilings.Default)
	}
	return nil
}

// publishedCeilings reads the integrations' max_job_concurrency, for the
// integrations --max-in-flight-per-integration does not cap: one request
// when the workers start. An API that does not answer leaves them without
// a ceiling, and says so.
func publishedCeilings(ctx context.Context, client *propexo.Client, cfg *jobs.Config, log *slog.Logger) {
	if cfg.Ceilings.Default > 0 {
		return
	}
	limits, err := client.IntegrationLimits(ctx)
	if err != nil {
		log.Warn("cannot read the integrations' published limits: no ceiling per integration until the workers start again", "error", err)
		return
	}
	cfg.Ceilings.Published = limits
	for id, n := range limits {
		log.Info("the integration publishes its limit: at most that many writes in flight", "integration_id", id, "max_job_concurrency", n)
	}
}
