package main

import (
	"context"
	"io"
	"log/slog"
	"net"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/dashboard"
	"github.com/propexo-importer/importer/internal/metrics"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

type dashboardConfig struct {
	addr         string
	allowedHosts []string
	auth         string
	allowActions bool
	metricsAddr  string
	redis        redisOnly
}

func newDashboardCommand(getenv env, g *globals, stdout, stderr io.Writer) *cobra.Command {
	c := &dashboardConfig{}
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the Imports page and Asynq's monitoring UI",
		Long: `dashboard serves, on one address:
  /imports      every import: file, start, progress, counts per outcome, rows
                per minute, time left, and its report to download; one
                import's page lists the rows that did not succeed
  /schedules    each schedule a running scheduler registered: its next
                firing, what its last firing did, the imports it made
  /monitoring/  Asynq's monitoring UI (asynqmon): queues, tasks, retries

It binds to 127.0.0.1 unless told otherwise, asks for basic auth with --auth
(or IMPORTER_DASHBOARD_AUTH), and is read-only unless --allow-actions, which
also unlocks asynqmon's actions.`,
		Example: `  REDIS_URL=redis://localhost:6379 importer dashboard
  REDIS_URL=... IMPORTER_DASHBOARD_AUTH=ops:secret importer dashboard --addr :8088 --allow-actions`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), g.logger(stderr), stdout)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.addr, "addr", envOr(getenv, "IMPORTER_DASHBOARD_ADDR", "127.0.0.1:8088"), "address to serve on "+envTag("IMPORTER_DASHBOARD_ADDR"))
	f.StringVar(&c.auth, "auth", getenv("IMPORTER_DASHBOARD_AUTH"), `ask for basic auth: "user:password" (prefer the environment variable: flags show in ps) `+envTag("IMPORTER_DASHBOARD_AUTH"))
	f.BoolVar(&c.allowActions, "allow-actions", false, "allow changes: asynqmon's task actions and cancelling imports")
	f.StringSliceVar(&c.allowedHosts, "allowed-hosts", splitList(getenv("IMPORTER_DASHBOARD_ALLOWED_HOSTS")), "host names the dashboard answers to without --auth, beside loopback and --addr's own (a guard against DNS rebinding) "+envTag("IMPORTER_DASHBOARD_ALLOWED_HOSTS"))
	c.redis.register(cmd, getenv)
	metricsFlag(f, getenv, &c.metricsAddr)
	return cmd
}

func (c *dashboardConfig) run(ctx context.Context, log *slog.Logger, stdout io.Writer) error {
	if c.redis.url == "" {
		return usageError("dashboard needs REDIS_URL (or --redis-url): the Redis of the imports")
	}
	conn, err := connectRedis(ctx, c.redis.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	st := store.New(conn.Client)
	inspector := asynq.NewInspectorFromRedisClient(conn.Client)
	allowed := c.allowedHosts
	if host, _, err := net.SplitHostPort(c.addr); err == nil && host != "" {
		allowed = append(allowed, host)
	}
	h, err := dashboard.New(dashboard.Config{
		Redis: conn.Opt, Store: st, Reports: report.Files{}, AllowActions: c.allowActions, Auth: c.auth, Log: log, AllowedHosts: allowed,
		// No report folder here: the workers write the report of an
		// import the cancel ends.
		Cancel: func(ctx context.Context, id string) error {
			return cancelError(id, commandImports(conn, st, "", log).Cancel(ctx, id))
		},
		Schedules: func(ctx context.Context) ([]importer.ScheduleStatus, error) {
			entries, err := jobs.SchedulerEntries(inspector)
			if err != nil {
				return nil, err
			}
			return commandImports(conn, st, "", log).ScheduleStatuses(ctx, entries)
		},
	})
	if err != nil {
		return usageError("%v", err)
	}
	if c.metricsAddr != "" {
		srv, err := serveMetrics(c.metricsAddr, metrics.New(inspector), log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return usageError("--addr %s: %v", c.addr, err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() && c.auth == "" {
		log.Warn("the dashboard listens beyond this machine without --auth: anyone who reaches it sees every import, its rows and their errors; set IMPORTER_DASHBOARD_AUTH=user:password", "addr", ln.Addr().String())
	}
	log.Info("dashboard listening", "url", "http://"+ln.Addr().String()+"/imports", "read_only", !c.allowActions, "auth", c.auth != "")
	return serveUntilDone(ctx, h.Server(), ln)
}
