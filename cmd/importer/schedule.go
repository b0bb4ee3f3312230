package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/internal/rdb"
	"github.com/propexo-importer/importer/internal/schedule"
	"github.com/propexo-importer/importer/jobs"
)

type scheduleConfig struct {
	config string
	redis  redisOnly
}

func newScheduleCommand(getenv env, g *globals, stderr io.Writer) *cobra.Command {
	c := &scheduleConfig{}
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Start imports on a schedule, from the files dropped in inboxes",
		Long: `schedule runs Asynq's scheduler from a YAML file of entries: a cron
expression (with a time zone), an inbox path or glob, and the import's
options (see samples/schedules.yaml). At each firing a worker claims the
files waiting in the inbox (moving them to processing/ beside it, so no file
is imported twice), imports them, writes their reports and moves each file to
done/ (every row succeeded) or failed/. Run two for availability: a firing
of both still imports each file once. Workers ('importer worker') do the
work; they must see the inbox folders.`,
		Example: `  REDIS_URL=redis://localhost:6379 importer schedule --config samples/schedules.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), g.logger(stderr))
		},
	}
	cmd.Flags().StringVar(&c.config, "config", envOr(getenv, "IMPORTER_SCHEDULES", "schedules.yaml"), "the schedules file "+envTag("IMPORTER_SCHEDULES"))
	c.redis.register(cmd, getenv)
	return cmd
}

func (c *scheduleConfig) run(ctx context.Context, log *slog.Logger) error {
	entries, err := schedule.Load(c.config)
	if err != nil {
		return usageError("%v", err)
	}
	if c.redis.url == "" {
		return usageError("schedule needs REDIS_URL (or --redis-url): the Redis the workers serve")
	}
	conn, err := connectRedis(ctx, c.redis.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	s := asynq.NewSchedulerFromRedisClient(conn.Client, &asynq.SchedulerOpts{Logger: rdb.Logger{L: log}, LogLevel: asynq.WarnLevel})
	for _, e := range entries {
		task, opts, err := jobs.NewScheduledImportTask(jobs.ScheduledImport{Name: e.Name, Inbox: e.Inbox, Options: e.Options, Limits: e.Limits,
			ReportSubdir: e.ReportSubdir, Retention: e.Retention, Settle: e.Settle, ReadyMarker: e.ReadyMarker, ClaimTimeout: e.ClaimTimeout})
		if err != nil {
			return usageError("schedule %s: %v", e.Name, err)
		}
		if _, err := s.Register(e.Spec, task, opts...); err != nil {
			return usageError("schedule %s: %v", e.Name, err)
		}
		log.Info("schedule registered", "schedule", e.Name, "cron", e.Spec, "inbox", e.Inbox)
	}
	if err := s.Start(); err != nil {
		return unfinished(err)
	}
	<-ctx.Done()
	s.Shutdown()
	return nil
}
