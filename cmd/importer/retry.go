package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

func newRetryCommand(getenv env, g *globals, stdout, stderr io.Writer) *cobra.Command {
	c := &runConfig{}
	cmd := &cobra.Command{
		Use:   "retry IMPORT_ID",
		Short: "Try again the rows of a finished import that failed for transient reasons",
		Long: `retry takes a finished import's rows that failed for reasons worth another
try — a write the PMS refused (retried through the API's retry-write), a
request that kept failing although it created nothing (sent again), a status
that could not be read (followed again) — and works them again. Rows in
doubt are left as they are unless --in-doubt (then each is looked up
again first), as are invalid rows and rows the API rejected. The same
report is written again when they end. An interrupted retry is resumed by
running it again. Needs REDIS_URL: the import's
state lives there.`,
		Example: `  REDIS_URL=redis://localhost:6379 PROPEXO_API_KEY=... importer retry residents-1a2b3c4d5e6f`,
		Args:    exactlyOne("retry", "IMPORT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.retry(cmd.Context(), args[0], g.waitingLogger(cmd, getenv, stderr), stdout, stderr)
		},
	}
	f := cmd.Flags()
	c.registerWorkFlags(f, getenv)
	retryFlag(f, &c.jobs)
	// retry works on an import in a Redis that outlives it: never the
	// in-process one.
	f.Lookup("redis-url").Usage = "Redis that holds the import (required) " + envTag("REDIS_URL")
	f.BoolVar(&c.retryOpts.InDoubt, "in-doubt", false, "also take the rows in doubt: look each up again and send it only if its resident still does not exist (use it once the PMS has synced, the next day say: a lookup right after a write may not see it yet)")
	return cmd
}

func (c *runConfig) retry(ctx context.Context, id string, log *slog.Logger, stdout, stderr io.Writer) error {
	if c.redisURL == "" {
		return usageError("retry needs REDIS_URL (or --redis-url): the Redis that holds import %s", id)
	}
	if err := c.api.resolveKey(); err != nil {
		return err
	}
	if err := c.limits.validate(); err != nil {
		return err
	}
	if err := c.lag.apply(&c.jobs); err != nil {
		return err
	}
	if c.workers < 0 {
		return usageError("--workers %d: use 0 or more", c.workers)
	}
	reportDir, err := filepath.Abs(c.reportDir)
	if err != nil {
		return usageError("--report-dir: %v", err)
	}
	conn, err := connectRedis(ctx, c.redisURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	st := store.New(conn.Client)
	imports := commandImports(conn, st, reportDir, log)
	if _, err := st.Import(ctx, id); errors.Is(err, importer.ErrImportNotFound) {
		return usageError("no import %s in Redis at %s", id, conn.Addr)
	} else if err != nil {
		return unfinished(fmt.Errorf("error reading import %s from Redis at %s: %w", id, conn.Addr, err))
	}
	stop, err := c.localWorkers(ctx, conn, st, log, stderr)
	if err != nil {
		return err
	}
	defer stop()
	res, err := imports.Retry(ctx, id, c.retryOpts)
	switch {
	case errors.Is(err, jobs.ErrStillRunning):
		return usageError("import %s has not finished; wait for it with the same 'importer run' before retrying", id)
	case err != nil:
		return unfinished(err)
	case res.Resumed:
		fmt.Fprintf(stderr, "import %s: resuming its retry, which was interrupted\n", id)
	case res.Reopened == 0:
		fmt.Fprintf(stderr, "import %s has no rows to retry\n", id)
		imp, err := st.Import(ctx, id)
		if err != nil {
			return unfinished(err)
		}
		return c.finish(ctx, imports, st, imp, stdout)
	default:
		fmt.Fprintf(stderr, "retrying %s of import %s\n", plural(res.Reopened, "row"), id)
	}
	if c.noWait {
		return nil
	}
	if err := c.wait(ctx, imports, st, conn, id, stderr); err != nil {
		return err
	}
	imp, err := st.Import(ctx, id)
	if err != nil {
		return unfinished(err)
	}
	return c.finish(ctx, imports, st, imp, stdout)
}
