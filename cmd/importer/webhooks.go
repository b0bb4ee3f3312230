package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/internal/metrics"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

type webhooksConfig struct {
	redisURL    string
	hooks       hookSettings
	metricsAddr string
}

func newWebhooksCommand(getenv env, g *globals, stdout, stderr io.Writer) *cobra.Command {
	c := &webhooksConfig{}
	cmd := &cobra.Command{
		Use:   "webhooks",
		Short: "Receive Propexo webhooks and resolve rows from them",
		Long: `webhooks serves the endpoint Propexo posts its webhooks to. It checks each
delivery's propexo-signature against PROPEXO_WEBHOOK_SECRET (401, nothing
recorded, when it does not match) and resolves rows from
WRITE_OPERATION_FAILURE and DATA_NEW, once, however often or in whatever order
they come. Run the workers with --webhooks so that polling becomes a slow
fallback, or serve webhooks inside a worker with 'importer worker
--webhooks-addr'.

Its subcommands manage the subscriptions that send the webhooks: register
subscribes a receiver's URL (POST /v1/webhooks/), list shows them, delete
removes one.`,
		Example: `  REDIS_URL=redis://localhost:6379 PROPEXO_WEBHOOK_SECRET=... importer webhooks --addr :8081`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), g.logger(stderr))
		},
	}
	f := cmd.Flags()
	urlFlag(f, &c.redisURL, "redis-url", getenv("REDIS_URL"), "Redis that holds the imports (required) "+envTag("REDIS_URL"))
	c.hooks.register(f, getenv, "addr", "127.0.0.1:8081")
	metricsFlag(f, getenv, &c.metricsAddr)
	cmd.AddCommand(newWebhooksRegisterCommand(getenv, stdout), newWebhooksListCommand(getenv, stdout), newWebhooksDeleteCommand(getenv, stdout))
	return cmd
}

func (c *webhooksConfig) run(ctx context.Context, log *slog.Logger) error {
	if c.redisURL == "" {
		return usageError("webhooks needs REDIS_URL (or --redis-url): the Redis of the imports")
	}
	if err := c.hooks.validate(); err != nil {
		return err
	}
	conn, err := connectRedis(ctx, c.redisURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	st := store.New(conn.Client)
	var cfg jobs.Config
	if c.metricsAddr != "" {
		m := metrics.New(asynq.NewInspectorFromRedisClient(conn.Client))
		cfg.Metrics = m // the rows the webhooks resolve are counted here
		srv, err := serveMetrics(c.metricsAddr, m, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	// The receiver only records outcomes: the workers write the reports.
	h := jobs.NewImports(nil, st, asynqClient(conn), nil, log, cfg)
	srv, ln, err := webhookServer(c.hooks.addr, c.hooks.path, c.hooks.secret, h, log)
	if err != nil {
		return err
	}
	log.Info("receiving webhooks", "addr", ln.Addr().String(), "path", c.hooks.path, "redis", conn.Addr)
	<-ctx.Done()
	log.Info("webhooks stopping")
	return srv.Close()
}
