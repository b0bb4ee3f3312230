package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/jobs"
)

func newDeleteCommand(getenv env, stdout io.Writer) *cobra.Command {
	var r redisOnly
	var force bool
	var reportDir string
	cmd := &cobra.Command{
		Use:   "delete IMPORT_ID",
		Short: "Remove an import and everything Redis holds of it",
		Long: `delete removes every key of an import from Redis: its record, rows,
outcomes, counters and the index of its write jobs, and says how many keys
it removed. It refuses an import that has not finished unless --force:
rows being sent would go on in the API with nothing to record their
outcome. Report files on disk are left as they are, but the import's
receipt in --report-dir goes too: the import is forgotten, not lost, and
its file run again is a new import.`,
		Example: `  REDIS_URL=redis://localhost:6379 importer delete residents-1a2b3c4d5e6f`,
		Args:    exactlyOne("delete", "IMPORT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			imports, closeRedis, err := r.imports(ctx, "delete", "")
			if err != nil {
				return err
			}
			defer closeRedis()
			id := args[0]
			n, err := imports.Delete(ctx, id, force, receipts{dir: absDir(reportDir)})
			var running *jobs.NotFinishedError
			switch {
			case errors.Is(err, importer.ErrImportNotFound):
				// Known only from this machine's receipt (Redis lost it):
				// forgetting it is all there is to delete.
				if _, ok, _ := report.ReadReceipt(absDir(reportDir), id); ok {
					report.RemoveReceipt(absDir(reportDir), id)
					fmt.Fprintf(stdout, "import %s deleted: Redis had lost it; this machine's receipt of it is removed (its report stays)\n", id)
					return nil
				}
				return usageError("no import %s in Redis", id)
			case errors.As(err, &running):
				return usageError("%v: deleting it would leave its rows in flight unrecorded; cancel it and wait for it to end, or give --force", err)
			case err != nil:
				return unfinished(err)
			}
			fmt.Fprintf(stdout, "import %s deleted: %s removed\n", id, plural(n, "key"))
			return nil
		},
	}
	r.register(cmd, getenv)
	cmd.Flags().BoolVar(&force, "force", false, "delete an import that has not finished")
	reportDirFlag(cmd, getenv, &reportDir, "folder of this machine's reports, where the import's receipt is removed too")
	return cmd
}

func newPruneCommand(getenv env, stdout io.Writer) *cobra.Command {
	var r redisOnly
	var olderThan string
	var reportDir string
	cmd := &cobra.Command{
		Use:   "prune --older-than AGE",
		Short: "Remove the finished imports older than an age",
		Long: `prune deletes (as 'importer delete' does) every finished import that was
started longer ago than --older-than (30d, 12h, 90m...). Imports still
running are left alone.`,
		Example: `  REDIS_URL=redis://localhost:6379 importer prune --older-than 30d`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if olderThan == "" {
				return usageError("prune needs --older-than, e.g. --older-than 30d")
			}
			age, err := parseAge(olderThan)
			if err != nil {
				return usageError("--older-than %q: %v", olderThan, err)
			}
			imports, closeRedis, err := r.imports(ctx, "prune", "")
			if err != nil {
				return err
			}
			defer closeRedis()
			res, err := imports.Prune(ctx, time.Now().Add(-age), receipts{dir: absDir(reportDir)})
			if err != nil {
				return unfinished(err)
			}
			fmt.Fprintf(stdout, "%s older than %s deleted (%s removed)", plural(res.Imports, "finished import"), olderThan, plural(res.Keys, "key"))
			if res.Running > 0 {
				fmt.Fprintf(stdout, "; %s not finished left alone", plural(res.Running, "import"))
			}
			fmt.Fprintln(stdout)
			return nil
		},
	}
	r.register(cmd, getenv)
	cmd.Flags().StringVar(&olderThan, "older-than", "", "the age past which finished imports are deleted: 30d, 12h, 90m")
	reportDirFlag(cmd, getenv, &reportDir, "folder of this machine's reports, where the imports' receipts are removed too")
	return cmd
}

// parseAge reads an age: a number of days (30d) or a Go duration (12h).
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, errors.New("use a whole number of days, e.g. 30d, or a duration such as 12h")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("use a number of days, e.g. 30d, or a duration such as 12h")
	}
	return d, nil
}

// plural says a count of things: "1 key", "2 keys".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// reportDirFlag adds --report-dir to a command that only reads or marks
// imports in this machine's report folder.
func reportDirFlag(cmd *cobra.Command, getenv env, p *string, usage string) {
	cmd.Flags().StringVar(p, "report-dir", envOr(getenv, "IMPORTER_REPORT_DIR", "reports"), usage+" "+envTag("IMPORTER_REPORT_DIR"))
}

// absDir is a folder as an absolute path (as given when it cannot be).
func absDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}
