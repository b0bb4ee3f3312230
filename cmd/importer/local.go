package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/ratelimit"
	"github.com/propexo-importer/importer/internal/rdb"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/store"
)

// This file holds what 'importer run' and 'importer retry' start in their
// own process while they wait: workers, and, with nothing configured, the
// in-process sandbox.

// localWorkers starts this process's workers while it waits (unless
// --no-wait or --workers 0), and returns what stops them.
func (c *runConfig) localWorkers(ctx context.Context, conn *rdb.Redis, st *store.Store, log *slog.Logger, stderr io.Writer) (stop func(), err error) {
	limiter := c.limits.limiter(conn, log)
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
		if _, err := newAPIClient(ctx, url, key, c.api.timeout, limiter, !c.api.checked); err != nil {
			return nil, err
		}
		return func() {}, nil
	}
	if limiter != nil {
		c.jobs.Limiter = limiter
	}
	api, closeAPI, err := c.apiFor(ctx, conn, limiter, stderr)
	if err != nil {
		return nil, err
	}
	if api == nil {
		return closeAPI, nil
	}
	publishedCeilings(ctx, api, &c.jobs, log)
	reportDir, err := filepath.Abs(c.reportDir)
	if err != nil {
		closeAPI()
		return nil, usageError("--report-dir: %v", err)
	}
	w, err := startWorkers(conn, api, st, reportDir, c.workers, log, c.jobs)
	if err != nil {
		closeAPI()
		return nil, unfinished(err)
	}
	return func() { w.stop(); closeAPI() }, nil
}

// defaultAPIURL is the production API, used when a key is set without a URL.
const defaultAPIURL = "https://api.propexo.com"

// apiFor returns the write API this process's workers talk to. With no key
// and no URL it starts the in-process sandbox, but only with the in-process
// Redis: on a shared Redis the rows would be split between the sandbox and
// the other workers' API. A nil API means: leave the work to the workers.
func (c *runConfig) apiFor(ctx context.Context, conn *rdb.Redis, limiter *ratelimit.Limiter, stderr io.Writer) (*propexo.Client, func(), error) {
	if c.api.key == "" && c.api.url == "" {
		if !conn.Embedded {
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
		state, err := filepath.Abs(filepath.Join(c.reportDir, sandboxState))
		if err != nil {
			return nil, nil, usageError("--report-dir: %v", err)
		}
		sb, err := startSandbox(sandbox.Config{Latency: latency, FailureRate: c.sandboxFailureRate,
			RateLimit: rateLimit, RateWindow: c.limits.window}, state, stderr)
		if err != nil {
			return nil, nil, unfinished(err)
		}
		fmt.Fprintf(stderr, "no REDIS_URL, PROPEXO_API_KEY or --api-url: using an in-process Redis, %d in-process workers and the in-process sandbox at %s (its residents kept in %s)\n", c.workers, sb.url, relativeFile(state))
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
	if conn.Embedded {
		fmt.Fprintln(stderr, "warning: no REDIS_URL: the import's state lives in this process only; if it is interrupted, a new run cannot tell which rows were already sent. Set REDIS_URL for imports that can resume.")
	}
	client, err := newAPIClient(ctx, url, key, c.api.timeout, limiter, !c.api.checked)
	if err != nil {
		return nil, nil, err
	}
	return client, func() {}, nil
}

func asynqClient(conn *rdb.Redis) *asynq.Client {
	return asynq.NewClientFromRedisClient(conn.Client)
}
