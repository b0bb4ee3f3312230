package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

func newPlanCommand(getenv env, g *globals, stdout, stderr io.Writer) *cobra.Command {
	c := &runConfig{}
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what importing a file would do, writing nothing",
		Long: `plan reads FILE as 'importer run' would (it takes the same flags), lists the
residents of the rows' integration once, and decides every row as the import
would: create, update (with the fields that change, old and new), unchanged,
conflict (its key matches several residents), not_found (--mode update),
superseded (a roster written after FILE wrote the resident since), invalid or
duplicate. It prints the counts and writes plan.csv into the
import's report folder. It never writes to the API: its only requests are the
listing's pages.

Exit codes, as run's: 0 every row would be written or is unchanged, within
--max-creates and --max-updates; 1 the plan is past them (run would refuse
it), or some rows would end unwritten (invalid, conflict, not found,
duplicate, superseded: plan.csv says why); 2 bad usage, configuration or unreadable
input; 3 the API or Redis could not be reached.`,
		Example: `  importer plan samples/night-2.csv
  importer plan --max-creates 5% --max-updates 20% roster.csv`,
		Args: exactlyOne("plan", "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.plan(cmd.Context(), args[0], g.waitingLogger(cmd, getenv, stderr), stdout, stderr)
		},
	}
	c.registerRunFlags(cmd.Flags(), getenv)
	return cmd
}

func (c *runConfig) plan(ctx context.Context, path string, log *slog.Logger, stdout, stderr io.Writer) error {
	p, cleanup, err := c.prepare(ctx, path)
	defer cleanup()
	if err != nil {
		return err
	}
	opts := p.file.Options
	if !opts.Mode.Matches() {
		return usageError("--mode create looks nobody up: every row would be created, so there is no plan to show (use --dry-run to see the rows)")
	}
	if err := checkWritable(p.reportDir); err != nil {
		return err
	}
	conn, err := connectRedis(ctx, c.redisURL)
	if err != nil {
		return err
	}
	defer conn.Close()
	limiter := c.limits.limiter(conn, log)
	api, closeAPI, err := c.apiFor(ctx, conn, limiter, stderr)
	if err != nil {
		return err
	}
	defer closeAPI()
	if api == nil {
		return usageError("plan lists the residents itself: set PROPEXO_API_KEY (and --api-url for another API than production)")
	}
	imports := jobs.NewImports(api, store.New(conn.Client), asynqClient(conn), nil, log, c.jobs)

	out, err := report.NewPlan(p.reportDir, p.id)
	if err != nil {
		return unfinished(err)
	}
	defer out.Abort()
	counts, listed, err := imports.Preview(ctx, p.file, func(row importer.ReportRow, _ importer.Resident, d importer.Decision) error {
		return out.Add(row.Result.Row, d)
	})
	if err != nil {
		return planError(err)
	}
	file, err := out.Commit()
	if err != nil {
		return unfinished(err)
	}
	fmt.Fprintf(stdout, "plan of %s (import %s, %s): %s\n", p.file.Shown, p.id, opts.Mode, plural(counts.Total, "row"))
	fmt.Fprintf(stdout, "  %d create, %d update, %d unchanged, %d conflict, %d not found, %d invalid, %d duplicate\n",
		counts.Create, counts.Update, counts.Unchanged, counts.Conflict, counts.NotFound, counts.Invalid, counts.Duplicate)
	if counts.Superseded > 0 {
		fmt.Fprintf(stdout, "  %s superseded: a roster written after this file wrote them since; an older roster never overwrites a newer one\n",
			plural(counts.Superseded, "row"))
	}
	fmt.Fprintf(stdout, "  matched on %s against %s listed; nothing was written\n", opts.MatchOn, plural(listed, "resident"))
	sayUnsent(stdout, p.file)
	fmt.Fprintf(stdout, "plan: %s\n", relativeFile(file))
	if err := importer.CheckGuards(counts, opts.MaxCreates, opts.MaxUpdates); err != nil {
		fmt.Fprintf(stdout, "run would refuse it: %v\n", err)
		return &exitError{code: exitSomeFailed}
	}
	if n := counts.NotFine(); n > 0 {
		fmt.Fprintf(stdout, "%s of %d would end unwritten; plan.csv says why\n", plural(n, "row"), counts.Total)
		return &exitError{code: exitSomeFailed}
	}
	return nil
}

// planError turns what stops a plan into its exit code: an unreadable file
// (2), the API refusing or out of reach (3).
func planError(err error) error {
	var input *jobs.InputError
	if errors.As(err, &input) {
		return usageError("%v", err)
	}
	if kind, ok := importer.ErrorKindOf(err); ok && kind == importer.KindUnauthorized {
		return unfinished(fmt.Errorf("the API rejected the credentials while listing the residents: %w", err))
	}
	return unfinished(fmt.Errorf("the residents could not be listed: %w", err))
}
