package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/notify"
	"github.com/propexo-importer/importer/internal/rdb"
	"github.com/propexo-importer/importer/internal/schedule"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

type scheduleConfig struct {
	config string
	redis  redisOnly
}

func newScheduleCommand(getenv env, g *globals, stdout, stderr io.Writer) *cobra.Command {
	c := &scheduleConfig{}
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Start imports on a schedule, from the files dropped in inboxes",
		Long: `schedule runs Asynq's scheduler from a YAML file of entries: a cron
expression (with a time zone), an inbox (a folder's path and a pattern of
its files' names, or a remote one: sftp://user@host/drop/*.csv,
s3://bucket/inbox/*.csv, gs://..., azblob://...) and the import's options
(see samples/schedules.yaml). At each firing a worker claims the files
waiting in the inbox (moving them to processing/ beside it, so no file is
imported twice), imports them, writes their reports and moves each file to
done/ (every row succeeded) or failed/. Run two for availability: a firing
of both still imports each file once. Workers ('importer worker') do the
work; they must see a local inbox's folder, and reach a remote one with
their SSH keys or their cloud's credentials.`,
		Example: `  REDIS_URL=redis://localhost:6379 importer schedule --config samples/schedules.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), getenv, g.logger(stderr))
		},
	}
	cmd.PersistentFlags().StringVar(&c.config, "config", envOr(getenv, "IMPORTER_SCHEDULES", "schedules.yaml"), "the schedules file "+envTag("IMPORTER_SCHEDULES"))
	c.redis.register(cmd, getenv)
	cmd.AddCommand(newScheduleListCommand(getenv, c, stdout))
	return cmd
}

func newScheduleListCommand(getenv env, c *scheduleConfig, stdout io.Writer) *cobra.Command {
	var redis redisOnly
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Print each schedule's next firing and what its last firing did",
		Long: `list prints, for each entry of the schedules file: its cron, its next
firing, and, from Redis, its last firing's outcome (imported, no_file,
waiting, refused, already_imported, or stopped when an import it started has
stopped since) with the imports it made. The dashboard's Schedules page shows
the same for the schedules a running scheduler registered.`,
		Example: `  REDIS_URL=redis://localhost:6379 importer schedule list --config samples/schedules.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return listSchedules(cmd.Context(), c.config, redis, stdout)
		},
	}
	redis.register(cmd, getenv)
	return cmd
}

// listSchedules prints the schedules of a file with their next firing and,
// with a Redis, their last firing's outcome.
func listSchedules(ctx context.Context, config string, redis redisOnly, stdout io.Writer) error {
	// The list needs no notification address: a ${VAR} the shell lacks
	// (a Slack URL kept for the scheduler) is not read.
	entries, err := schedule.Load(config, nil)
	if err != nil {
		return usageError("%v", err)
	}
	now := time.Now()
	statuses := make([]importer.ScheduleStatus, len(entries))
	for i, e := range entries {
		statuses[i] = importer.ScheduleStatus{Name: e.Name, Cron: e.Cron, Inbox: fetch.Redact(e.Inbox), Next: e.Next(now)}
	}
	note := ""
	if redis.url == "" {
		note = "set REDIS_URL (or --redis-url) to see what the last firings did"
	} else {
		imports, closeRedis, err := redis.imports(ctx, "schedule list", "")
		if err != nil {
			return err
		}
		defer closeRedis()
		if statuses, err = imports.ScheduleStatuses(ctx, statuses); err != nil {
			return unfinished(err)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tCRON\tNEXT FIRING\tLAST FIRING\tOUTCOME\tLATEST IMPORTS")
	for _, s := range statuses {
		last, outcome, imports := "-", "-", "-"
		if s.Last != nil {
			last, outcome = s.Last.At.Local().Format("2006-01-02 15:04 MST"), string(s.Last.Outcome)
		} else if redis.url != "" {
			last = "never"
		}
		if n := len(s.Imports); n > 0 {
			imports = strings.Join(s.Imports[:min(n, 3)], " ")
			if n > 3 {
				imports += fmt.Sprintf(" (+%d)", n-3)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s (%s)\t%s\t%s\t%s\n", s.Name, s.Cron, s.Next.Local().Format("2006-01-02 15:04 MST"),
			untilFiring(time.Until(s.Next)), last, outcome, imports)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range statuses {
		if s.Last != nil && s.Last.Detail != "" {
			fmt.Fprintf(stdout, "%s: %s\n", s.Name, s.Last.Detail)
		}
	}
	if note != "" {
		fmt.Fprintln(stdout, note)
	}
	return nil
}

func (c *scheduleConfig) run(ctx context.Context, getenv env, log *slog.Logger) error {
	entries, err := schedule.Load(c.config, getenv)
	if err != nil {
		return usageError("%v", err)
	}
	// Every entry's targets are checked before anything is registered.
	targets := make([][]notify.Target, len(entries))
	for i, e := range entries {
		if targets[i], err = scheduleTargets(e); err != nil {
			return err
		}
	}
	if c.redis.url == "" {
		return usageError("schedule needs REDIS_URL (or --redis-url): the Redis the workers serve")
	}
	conn, err := connectRedis(ctx, c.redis.url)
	if err != nil {
		return err
	}
	defer conn.Close()
	st := store.New(conn.Client)
	// The scheduler's heartbeat publishes its entries (the dashboard's
	// Schedules page lists them) every few seconds.
	s := asynq.NewSchedulerFromRedisClient(conn.Client, &asynq.SchedulerOpts{Logger: rdb.Logger{L: log}, LogLevel: asynq.WarnLevel, HeartbeatInterval: 3 * time.Second})
	for i, e := range entries {
		// The addresses stay in Redis, for the workers; the task names
		// the targets by id.
		refs, err := saveTargets(ctx, st, targets[i])
		if err != nil {
			return unfinished(err)
		}
		task, opts, err := jobs.NewScheduledImportTask(jobs.ScheduledImport{Name: e.Name, Inbox: e.Inbox, Options: e.Options, Limits: e.Limits,
			ReportSubdir: e.ReportSubdir, Retention: e.Retention, Settle: e.Settle, ReadyMarker: e.ReadyMarker, ClaimTimeout: e.ClaimTimeout,
			Notify: refs, ExpectFile: e.ExpectFile, Cron: e.Cron, AllowDroppedColumns: e.AllowDroppedColumns, RetryTransient: e.RetryTransient})
		if err != nil {
			return usageError("schedule %s: %v", e.Name, err)
		}
		if _, err := s.Register(e.Spec, task, opts...); err != nil {
			return usageError("schedule %s: %v", e.Name, err)
		}
		log.Info("schedule registered", "schedule", e.Name, "cron", e.Spec, "inbox", fetch.Redact(e.Inbox))
	}
	if err := s.Start(); err != nil {
		return unfinished(err)
	}
	<-ctx.Done()
	s.Shutdown()
	return nil
}

// untilFiring says how far off a firing is, as precisely as people read
// it: "in 27s" under a minute, "in 5h3m" beyond, "due" once it is.
func untilFiring(d time.Duration) string {
	if d <= 0 {
		return "due"
	}
	if r := d.Round(time.Second); r < time.Minute {
		return "in " + r.String()
	}
	s := d.Round(time.Minute).String()
	return "in " + strings.TrimSuffix(s, "0s")
}
