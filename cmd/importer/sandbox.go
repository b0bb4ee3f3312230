package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/apispec"
	"github.com/propexo-importer/importer/internal/sandbox"
)

// sandboxViolation is what the sandbox logs when a request or an answer
// departs from the published OpenAPI file; the end-to-end tests fail on
// it.
const sandboxViolation = "the sandbox saw a departure from the published OpenAPI file"

type sandboxConfig struct {
	addr    string
	apiKey  apiSettings
	latency string
	// cacheLag is --cache-lag, read by importer.ParseCacheLag.
	cacheLag string
	cfg      sandbox.Config
	faults   struct {
		slowDelay time.Duration
	}
}

func newSandboxCommand(getenv env, g *globals, stderr io.Writer) *cobra.Command {
	c := &sandboxConfig{}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve a local stand-in for the Propexo write API",
		Long: `sandbox serves a local server that behaves like the Propexo write API as
its published OpenAPI file (the resident-write part, built in) describes it:
every request is checked against the file (400 where the API refuses one)
and every answer follows it; both create paths with each vendor's rules, 400
and 405 error bodies, writes that stay PENDING for a while and then succeed
or fail, reading (the file's read model: no rent terms or lease) and listing
residents, updates through the PUT's schema, retrying failed writes, webhook
subscriptions, and 401 without the right bearer token. Clients must send the
key in PROPEXO_API_KEY (or --api-key-file). A departure from the file is
logged as an error and counted in GET /_sandbox/stats (spec_violations).

Integrations: int_rentmanager_demo (rentmanager; properties prop_100,
prop_200, prop_300), int_propertyware_demo (propertyware_rest),
int_buildium_demo (buildium: lease_id and a US address required),
int_rentvine_demo (no vendor rules: only the generic create's) and
int_yardi_demo (cannot create: 405). Each vendor path takes only its own
fields (400 for others, unless ?ignore_unknown_fields=true).
Rate limits: x-ratelimit-limit and x-ratelimit-remaining on every answer,
each answer past 80% of a window held back 2s, 429 at 100% until the window
ends. Faults (--error-rate, --drop-rate, --slow-rate, --gateway-error-rate,
--status-not-found-rate) can also be changed at
run time: PUT /_sandbox/faults {"error_rate":0.1,"error_burst":5}.
GET /_sandbox/stats shows what it saw (requests, 429s, creates and residents
per identity, faults, webhooks).`,
		Example: `  PROPEXO_API_KEY=dev-key importer sandbox --addr 127.0.0.1:8080 --latency uniform:1s-5s --failure-rate 0.05`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), g.logger(stderr))
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.addr, "addr", envOr(getenv, "SANDBOX_ADDR", "127.0.0.1:8080"), "address to listen on "+envTag("SANDBOX_ADDR"))
	f.StringVar(&c.apiKey.keyFile, "api-key-file", getenv("PROPEXO_API_KEY_FILE"), "file holding the key clients must send; the key itself is read from $PROPEXO_API_KEY "+envTag("PROPEXO_API_KEY_FILE"))
	c.apiKey.key = getenv("PROPEXO_API_KEY")
	f.StringVar(&c.latency, "latency", envOr(getenv, "SANDBOX_LATENCY", sandbox.DefaultLatency), "how long writes stay PENDING: fixed:2s, uniform:1s-5s or lognormal:median=2s,p99=30s "+envTag("SANDBOX_LATENCY"))
	f.Float64Var(&c.cfg.FailureRate, "failure-rate", 0, "share of writes (0-1) that end in FAILURE")
	f.Float64Var(&c.cfg.PartialRate, "partial-rate", 0, "share of writes (0-1) that end in PARTIAL_SUCCESS")
	f.Float64Var(&c.cfg.StuckRate, "stuck-rate", 0, "share of writes (0-1) that never leave PENDING")
	f.IntVar(&c.cfg.MaxJobConcurrency, "max-job-concurrency", 0, "publish this max_job_concurrency for every integration and run at most that many of its write jobs at once, queuing the rest (PENDING) as Propexo does (0: none published, no queue)")
	f.StringVar(&c.cacheLag, "cache-lag", "0s", "how long a written resident stays out of get and list after its write resolves, as Propexo shows a record once it has read it back from the PMS: a duration, or 'sync' (until POST /v1/admin/integrations/{id}/manual-sync), for every vendor or per vendor (buildium=sync,rentmanager=0s,30s)")
	f.Uint64Var(&c.cfg.Seed, "seed", 1, "seed of the random choices, so a run can be repeated")
	f.IntVar(&c.cfg.RateLimit, "rate-limit", 150, "requests allowed per window, all endpoints together (-1: no limit)")
	f.DurationVar(&c.cfg.RateWindow, "rate-window", time.Minute, "length of a rate-limit window")
	f.DurationVar(&c.cfg.RateWindowOffset, "rate-window-offset", 0, "the windows start this long after the clock's window boundaries (23s: each minute's window starts at :23); the docs say nothing of where they start")
	f.DurationVar(&c.cfg.SlowDelay, "rate-slow-delay", 2*time.Second, "delay of each answer past 80% of a window")
	f.Float64Var(&c.cfg.Faults.ErrorRate, "error-rate", 0, "share of requests (0-1) that start a burst of 503 answers")
	f.IntVar(&c.cfg.Faults.ErrorBurst, "error-burst", 1, "length of a 503 burst")
	f.Float64Var(&c.cfg.Faults.DropRate, "drop-rate", 0, "share of requests (0-1) whose answer is lost after the request took effect")
	f.Float64Var(&c.cfg.Faults.SlowRate, "slow-rate", 0, "share of answers (0-1) held back by --slow-delay")
	f.DurationVar(&c.faults.slowDelay, "slow-delay", 5*time.Second, "how long a slow answer is held back")
	f.Float64Var(&c.cfg.Faults.GatewayErrorRate, "gateway-error-rate", 0, "share of requests (0-1) that take effect but are answered 502, 504 or 500 (HTML or JSON), as a gateway answers a slow API")
	f.Float64Var(&c.cfg.Faults.StatusNotFoundRate, "status-not-found-rate", 0, "share of write-status reads (0-1) of a known job answered 404")
	f.StringVar(&c.cfg.Webhooks.URL, "webhook-url", getenv("SANDBOX_WEBHOOK_URL"), "where to send webhooks when writes resolve, signed with $PROPEXO_WEBHOOK_SECRET (none when empty) "+envTag("SANDBOX_WEBHOOK_URL"))
	f.DurationVar(&c.cfg.Webhooks.RetryInterval, "webhook-retry-interval", 15*time.Minute, "wait before a webhook answered non-2xx is sent again (10 times at most)")
	f.Float64Var(&c.cfg.Webhooks.DuplicateRate, "webhook-duplicate-rate", 0, "share of webhooks (0-1) sent twice")
	f.DurationVar(&c.cfg.Webhooks.Jitter, "webhook-jitter", 0, "hold each webhook back by up to this long, so they arrive out of order")
	variant := func(dst *string, name, what string) {
		choices := sandbox.VariantChoices(strings.ReplaceAll(name, "-", "_"))
		f.StringVar(dst, name, choices[0], what+": "+strings.Join(choices, " or ")+" (the API's documents leave it open)")
	}
	f.IntVar(&c.cfg.Variants.UnknownJobStatus, "unknown-job-status", 404, "status of a write-status read of a job the API does not know: 404 or 400 (undocumented)")
	variant(&c.cfg.Variants.CreatedRecordID, "created-record-id", "what a SUCCESS carries in created_record_id: the resident's id, null, or another object's id")
	variant(&c.cfg.Variants.DataNew, "data-new", "what DATA_NEW's root_job_id carries: the write's job id, a sync job's id, or no DATA_NEW at all")
	variant(&c.cfg.Variants.DataUpdate, "data-update", "what DATA_UPDATE's root_job_id carries (an update read back): the write's job id, a sync job's id, or no DATA_UPDATE at all")
	variant(&c.cfg.Variants.CreateAnswer, "create-answer", "shape of a write's answer: {job_id, data} as the published OpenAPI file has it, or {meta: {job_id}, result} as the docs pages show it")
	variant(&c.cfg.Variants.HasMore, "has-more", "a list's hasMore: true/false with total, or null without total")
	c.cfg.Webhooks.Secret = getenv("PROPEXO_WEBHOOK_SECRET")
	return cmd
}

func (c *sandboxConfig) run(ctx context.Context, log *slog.Logger) error {
	if err := c.apiKey.resolveKey(); err != nil {
		return err
	}
	if c.apiKey.key == "" {
		return usageError("set PROPEXO_API_KEY (or --api-key-file) to the key clients must send")
	}
	latency, err := sandbox.ParseLatency(c.latency)
	if err != nil {
		return usageError("--latency: %v", err)
	}
	if c.cfg.MaxJobConcurrency < 0 {
		return usageError("--max-job-concurrency %d: use 1 or more, or 0 for none", c.cfg.MaxJobConcurrency)
	}
	if c.cfg.FailureRate < 0 || c.cfg.PartialRate < 0 || c.cfg.StuckRate < 0 || c.cfg.FailureRate+c.cfg.PartialRate+c.cfg.StuckRate > 1 {
		return usageError("--failure-rate, --partial-rate and --stuck-rate: use shares from 0 to 1 that add up to at most 1")
	}
	if !c.cfg.Faults.Valid() {
		return usageError("--error-rate, --drop-rate, --slow-rate and --gateway-error-rate: use shares from 0 to 1 that add up to at most 1; --status-not-found-rate a share from 0 to 1")
	}
	if c.cfg.CacheLag, err = importer.ParseCacheLag(c.cacheLag); err != nil {
		return usageError("--cache-lag: %v", err)
	}
	if err := c.cfg.Variants.Validate(); err != nil {
		return usageError("--%s", strings.ReplaceAll(err.Error(), "_", "-"))
	}
	if c.cfg.RateLimit == 0 {
		return usageError("--rate-limit 0: use a positive limit, or -1 for none")
	}
	if c.cfg.Webhooks.URL != "" && c.cfg.Webhooks.Secret == "" {
		return usageError("--webhook-url needs PROPEXO_WEBHOOK_SECRET, the secret that signs the deliveries")
	}
	c.cfg.Faults.SlowDelay = sandbox.Duration(c.faults.slowDelay)
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return usageError("--addr %s: %v", c.addr, err)
	}
	cfg := c.cfg
	cfg.APIKey, cfg.Latency = c.apiKey.key, latency
	cfg.OnViolation = func(v apispec.Violation) { log.Error(sandboxViolation, "violation", v.Error()) }
	sb := sandbox.New(cfg)
	sb.Start()
	defer sb.Close()
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("sandbox listening", "url", "http://"+ln.Addr().String(), "latency", latency.String(), "rate_limit", cfg.RateLimit,
		"failure_rate", cfg.FailureRate, "partial_rate", cfg.PartialRate, "stuck_rate", cfg.StuckRate, "webhooks", cfg.Webhooks.URL != "")
	if err := serveUntilDone(ctx, srv, ln); err != nil {
		return err
	}
	log.Info("sandbox stopped")
	return nil
}
