package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/metrics"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

type workerConfig struct {
	lag         lagSetting
	redisURL    string
	concurrency int
	reportDir   string
	api         apiSettings
	limits      limits
	hooks       hookSettings
	webhooksOn  bool
	metricsAddr string
	cpuProfile  string
	heapProfile string
	jobs        jobs.Config
	notify      notifySettings
}

func newWorkerCommand(getenv env, g *globals, stderr io.Writer) *cobra.Command {
	c := &workerConfig{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Process the import tasks queued in Redis",
		Long: `worker processes the tasks of every import queued in REDIS_URL: it sends
creates to the write API, follows their jobs with delayed status checks and
writes reports. Run as many as you like, on as many machines. On SIGTERM or
Ctrl-C it stops taking tasks, lets the ones in flight finish (or puts them
back on the queue) and exits 0.`,
		Example: `  REDIS_URL=redis://localhost:6379 PROPEXO_API_KEY=... importer worker --concurrency 20`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), g.logger(stderr))
		},
	}
	// A schedule's sftp:// inbox is read with the keys OpenSSH would use.
	c.jobs.Sources = fetch.Options{SSH: sshOptions(getenv)}
	f := cmd.Flags()
	urlFlag(f, &c.redisURL, "redis-url", getenv("REDIS_URL"), "Redis that holds the queue and the imports (required) "+envTag("REDIS_URL"))
	f.IntVar(&c.concurrency, "concurrency", 10, "tasks worked on at once")
	f.StringVar(&c.reportDir, "report-dir", envOr(getenv, "IMPORTER_REPORT_DIR", "reports"), "folder this worker writes reports to, <import id>/ each (scheduled imports: in their schedule's report_dir inside it); 'importer run' writes its own copy in its own folder "+envTag("IMPORTER_REPORT_DIR"))
	c.api.register(f, getenv)
	c.limits.register(f, getenv)
	c.hooks.register(f, getenv, "webhooks-addr", "")
	c.hooks.registerFallback(f)
	metricsFlag(f, getenv, &c.metricsAddr)
	f.DurationSliceVar(&c.jobs.LookupWaits, "lookup-waits", jobs.DefaultLookupWaits, "waits between the searches for a resident whose create may have reached the API, before the row is called in_doubt")
	f.BoolVar(&c.webhooksOn, "webhooks", false, "webhooks are received (by 'importer webhooks' or another worker): index jobs for them and poll only as a fallback; implied by --webhooks-addr")
	pollFlags(f, &c.jobs)
	c.notify.register(f, getenv, "every import these workers see that no schedule started (give every worker the same)")
	c.lag.register(f, getenv)
	ledgerFlag(f, &c.jobs)
	ceilingFlag(f, &c.jobs)
	f.StringVar(&c.cpuProfile, "cpu-profile", "", "write a CPU profile of this worker to this file when it stops (for 'go tool pprof')")
	f.StringVar(&c.heapProfile, "heap-profile", "", "write a heap profile of this worker to this file when it stops")
	f.IntVar(&c.jobs.Window, "window", jobs.DefaultWindow, "rows of an import in flight at once: the feed queues more as rows resolve, so a big file never floods Redis")
	return cmd
}

func (c *workerConfig) run(ctx context.Context, log *slog.Logger) error {
	if c.redisURL == "" {
		return usageError("worker needs REDIS_URL (or --redis-url): the Redis that 'importer run' queues into")
	}
	if c.concurrency < 1 {
		return usageError("--concurrency %d: use 1 or more", c.concurrency)
	}
	if err := c.api.resolveKey(); err != nil {
		return err
	}
	if err := validateCeiling(c.jobs); err != nil {
		return err
	}
	if err := c.limits.validate(); err != nil {
		return err
	}
	if err := c.hooks.validate(); err != nil {
		return err
	}
	if err := c.lag.apply(&c.jobs); err != nil {
		return err
	}
	targets, err := c.notify.targets()
	if err != nil {
		return err
	}
	if err := c.notify.apply(&c.jobs); err != nil {
		return err
	}
	if c.webhooksOn || c.hooks.addr != "" {
		c.jobs.PollFallback = c.hooks.fallback
	}
	url, key, err := c.api.endpoint()
	if err != nil {
		return err
	}
	conn, err := connectRedis(ctx, c.redisURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	limiter := c.limits.limiter(conn, log)
	if limiter != nil {
		c.jobs.Limiter = limiter
	}
	client, err := newAPIClient(ctx, url, key, c.api.timeout, limiter, false)
	if err != nil {
		return err
	}
	// A rejected key stops the worker: no row could be sent. An API that
	// does not answer yet (a 503 while it deploys, a network blip) does
	// not: the worker starts, says so, and checks again with backoff.
	if err := probeAPI(ctx, client, limiter); err != nil {
		var rejected *keyRejectedError
		var exit *exitError
		if errors.As(err, &rejected) || errors.As(err, &exit) && exit.code == exitUsage {
			return err // a wrong key or URL: no row could be sent
		}
		log.Warn("the API does not answer yet; the worker starts anyway and checks again", "api", client.BaseURL(), "error", err)
		go probeUntilAnswered(ctx, client, limiter, log)
	}
	publishedCeilings(ctx, client, &c.jobs, log)
	var api importer.WriteAPI = client
	if c.metricsAddr != "" {
		m := metrics.New(asynq.NewInspectorFromRedisClient(conn.Client))
		c.jobs.Metrics, api = m, m.API(client)
		srv, err := serveMetrics(c.metricsAddr, m, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	st := store.New(conn.Client)
	reportDir, err := filepath.Abs(c.reportDir)
	if err != nil {
		return usageError("--report-dir: %v", err)
	}
	if c.jobs.Notify, err = saveTargets(ctx, st, targets); err != nil {
		return unfinished(err)
	}
	w, err := startWorkers(conn, api, st, reportDir, c.concurrency, log, c.jobs)
	if err != nil {
		return unfinished(err)
	}
	go watchEpoch(ctx, st, conn.Addr, log, 10*time.Second)
	if c.hooks.addr != "" {
		srv, ln, err := webhookServer(c.hooks.addr, c.hooks.path, c.hooks.secret, w.handlers, log)
		if err != nil {
			w.stop()
			return err
		}
		defer srv.Close()
		log.Info("receiving webhooks", "addr", ln.Addr().String(), "path", c.hooks.path)
	}
	stopProfiles, err := startProfiles(c.cpuProfile, c.heapProfile)
	if err != nil {
		w.stop()
		return err
	}
	defer func() {
		if err := stopProfiles(); err != nil {
			log.Error("cannot write the profiles", "error", err)
		}
	}()
	log.Info("worker started", "redis", conn.Addr, "api", client.BaseURL(), "concurrency", c.concurrency, "rate_limit", c.limits.perWindow, "rate_window", c.limits.window, "poll_fallback", c.jobs.PollFallback)
	<-ctx.Done()
	log.Info("worker stopping: finishing the tasks in flight")
	w.stop()
	log.Info("worker stopped")
	return nil
}

// watchEpoch says, once per loss, when Redis has lost its data (restarted
// without persistence, or flushed): the imports it held are gone, and only
// running their files again recovers them.
func watchEpoch(ctx context.Context, st *store.Store, addr string, log *slog.Logger, every time.Duration) {
	known, _, _ := st.Epoch(ctx)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		epoch, _, err := st.Epoch(ctx)
		if err != nil {
			continue // Redis out of reach: Asynq says so
		}
		if known != "" && epoch != known {
			log.Error("Redis lost its data (restarted without persistence, or flushed): the imports it held are gone; run their files again to recover them (each row is looked up in the API before it is sent, so none is created twice), and give Redis append-only persistence", "redis", addr)
		}
		known = epoch
	}
}

// startProfiles starts a CPU profile into cpuFile, when given, and returns
// what stops it and writes a heap profile into heapFile, when given.
func startProfiles(cpuFile, heapFile string) (stop func() error, err error) {
	var cpu *os.File
	if cpuFile != "" {
		if cpu, err = os.Create(cpuFile); err != nil {
			return nil, usageError("--cpu-profile: %v", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, usageError("--cpu-profile: %v", err)
		}
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if heapFile != "" {
			f, err := os.Create(heapFile)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			runtime.GC()
			errs = append(errs, pprof.WriteHeapProfile(f), f.Close())
		}
		return errors.Join(errs...)
	}, nil
}
