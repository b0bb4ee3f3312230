package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// redisOnly is the flag of commands that only read or mark imports in Redis.
type redisOnly struct{ url string }

func (r *redisOnly) register(cmd *cobra.Command, getenv env) {
	urlFlag(cmd.Flags(), &r.url, "redis-url", getenv("REDIS_URL"), "Redis that holds the imports (required) "+envTag("REDIS_URL"))
}

// open connects to the Redis of the imports, refusing the in-process one: it
// would hold nothing.
func (r *redisOnly) open(ctx context.Context, command string) (*store.Store, func(), error) {
	if r.url == "" {
		return nil, nil, usageError("%s needs REDIS_URL (or --redis-url): the Redis that holds the imports", command)
	}
	conn, err := connectRedis(ctx, r.url)
	if err != nil {
		return nil, nil, err
	}
	return store.New(conn.Client), func() { conn.Close() }, nil
}

// imports connects to the Redis of the imports and returns the lifecycle
// as the command uses it, writing reports into reportDir.
func (r *redisOnly) imports(ctx context.Context, command, reportDir string) (*jobs.Imports, func(), error) {
	if r.url == "" {
		return nil, nil, usageError("%s needs REDIS_URL (or --redis-url): the Redis that holds the imports", command)
	}
	conn, err := connectRedis(ctx, r.url)
	if err != nil {
		return nil, nil, err
	}
	return commandImports(conn, store.New(conn.Client), reportDir, nil), func() { conn.Close() }, nil
}

// importStatus is one import as status shows it.
type importStatus struct {
	importer.Status
	ReportDir string `json:"report_dir"`
}

func statusOf(ctx context.Context, st *store.Store, id string) (importStatus, error) {
	imp, err := st.Import(ctx, id)
	if err != nil {
		return importStatus{}, err
	}
	p, err := st.Progress(ctx, id)
	if err != nil {
		return importStatus{}, err
	}
	return importStatus{Status: importer.NewStatus(imp, p, time.Now()), ReportDir: report.Dir(imp.ReportDir, imp.ID)}, nil
}

// lostStatus describes an import this machine started (its receipt says
// so) that Redis no longer has.
// One that had finished before (its summary.json is here) is shown
// finished: there is nothing to recover, and its file is not to be sent
// again over what newer imports wrote.
func lostStatus(rc report.Receipt, reportDir string) importStatus {
	if sum, ok := report.ReadFinished(reportDir, rc.ImportID); ok {
		return importStatus{Status: importer.Status{ID: rc.ImportID, File: rc.File, State: "finished", StartedAt: sum.StartedAt, FinishedAt: sum.FinishedAt,
			Total: sum.Total, Resolved: sum.Total, Counts: sum.Counts,
			Stopped: "Redis no longer has this import; it had finished, and its report is here: nothing to recover"},
			ReportDir: report.Dir(reportDir, rc.ImportID)}
	}
	return importStatus{Status: importer.Status{ID: rc.ImportID, File: rc.File, State: "lost", StartedAt: rc.StartedAt, Total: -1, Counts: map[importer.Outcome]int{},
		Stopped: "Redis no longer has this import (it lost its data: restarted without persistence, or flushed); run its file again to recover it"},
		ReportDir: report.Dir(reportDir, rc.ImportID)}
}

func newStatusCommand(getenv env, stdout io.Writer) *cobra.Command {
	c := &statusConfig{}
	cmd := &cobra.Command{
		Use:   "status [IMPORT_ID]",
		Short: "Show the imports in Redis, or one of them in detail: progress, outcomes, top errors, next steps",
		Long: `status lists every import in Redis (and those this machine started that Redis
lost): state, progress, outcomes, rows per minute, time left. With an
IMPORT_ID it describes that import: its outcomes, the errors most of its
rows that did not succeed have, where its report is and what to do next.
--watch shows it again every two seconds until the import ends.`,
		Example: `  importer status
  importer status residents-1a2b3c4d5e6f --watch`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, closeRedis, err := c.redis.open(ctx, "status")
			if err != nil {
				return err
			}
			defer closeRedis()
			var last string
			for {
				var out bytes.Buffer
				done, err := c.show(ctx, st, args, &out)
				if err != nil {
					return err
				}
				if out.String() != last {
					if last != "" {
						fmt.Fprintf(stdout, "\n— %s\n", time.Now().Local().Format("15:04:05 MST"))
					}
					fmt.Fprint(stdout, out.String())
					last = out.String()
				}
				if !c.watch || done {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(2 * time.Second):
				}
			}
		},
	}
	c.redis.register(cmd, getenv)
	cmd.Flags().BoolVar(&c.asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&c.watch, "watch", false, "show it again every two seconds (when it changed) until it ends")
	reportDirFlag(cmd, getenv, &c.reportDir, "folder of this machine's reports, where imports Redis lost are still known")
	return cmd
}

// statusConfig are the flags of importer status.
type statusConfig struct {
	redis     redisOnly
	asJSON    bool
	watch     bool
	reportDir string
}

// show writes the imports (or the one import asked for) to w, and reports
// whether there is nothing more to watch: every import shown has ended.
func (c *statusConfig) show(ctx context.Context, st *store.Store, args []string, w io.Writer) (done bool, err error) {
	ids := args
	if len(ids) == 0 {
		if ids, err = st.Imports(ctx); err != nil {
			return false, unfinished(err)
		}
	}
	absDir := absDir(c.reportDir)
	var all []importStatus
	for _, id := range ids {
		s, err := statusOf(ctx, st, id)
		if errors.Is(err, importer.ErrImportNotFound) {
			if rc, ok, _ := report.ReadReceipt(absDir, id); ok {
				all = append(all, lostStatus(rc, absDir))
				continue
			}
			if len(args) == 0 {
				continue // deleted while the list was read
			}
			return false, usageError("no import %s in Redis", id)
		}
		if err != nil {
			return false, unfinished(err)
		}
		all = append(all, s)
	}
	if len(args) == 0 {
		// Imports this machine started that Redis lost.
		receipts, _ := report.Receipts(absDir)
		for _, rc := range receipts {
			if _, err := st.Import(ctx, rc.ImportID); errors.Is(err, importer.ErrImportNotFound) {
				all = append(all, lostStatus(rc, absDir))
			}
		}
	}
	done = true
	for _, s := range all {
		if s.State == "running" || s.State == "cancelling" {
			done = false
		}
	}
	switch {
	case c.asJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if len(args) == 1 {
			return done, enc.Encode(all[0])
		}
		if all == nil {
			all = []importStatus{}
		}
		return done, enc.Encode(all)
	case len(args) == 1:
		return done, describe(ctx, st, all[0], w)
	case len(all) == 0:
		fmt.Fprintln(w, "no imports")
		return done, nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMPORT\tFILE\tSTATE\tSTARTED\tROWS\tOUTCOMES\tROWS/MIN\tLEFT")
	for _, s := range all {
		if s.State == "lost" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\t%s\t\t\n", s.ID, s.File, s.State, s.StartedAt.Local().Format("2006-01-02 15:04"), "run the file again to recover it")
			continue
		}
		total := "?"
		if s.Total >= 0 {
			total = fmt.Sprint(s.Total)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%s\t%s\t%.1f\t%s\n", s.ID, s.File, s.State, s.StartedAt.Local().Format("2006-01-02 15:04"),
			s.Resolved, total, outcomeList(s.Counts), s.RowsPerMin, timeLeft(s.Status))
	}
	return done, tw.Flush()
}

// outcomeList says the counts of outcomes in the reports' order.
func outcomeList(counts map[importer.Outcome]int) string {
	var parts []string
	for _, o := range importer.Outcomes {
		if n := counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o.Label()))
		}
	}
	return strings.Join(parts, ", ")
}

func timeLeft(s importer.Status) string {
	if s.SecondsLeft <= 0 {
		return ""
	}
	return (time.Duration(s.SecondsLeft) * time.Second).String()
}

// describe writes one import in detail, kubectl describe's way.
func describe(ctx context.Context, st *store.Store, s importStatus, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{label}, args...)...)
	}
	line("Import", "%s", s.ID)
	line("File", "%s", s.File)
	state := fmt.Sprintf("%s, started %s", s.State, s.StartedAt.Local().Format("2006-01-02 15:04:05 MST"))
	if !s.FinishedAt.IsZero() {
		state += fmt.Sprintf(", finished %s (took %s)", s.FinishedAt.Local().Format("15:04:05 MST"), s.FinishedAt.Sub(s.StartedAt).Round(time.Second))
	}
	line("State", "%s", state)
	if s.Stopped != "" {
		line("Why", "%s", s.Stopped)
	}
	if s.State == "lost" {
		line("Next", "run its file again: it is recovered, each row looked up in the API before it is sent")
		return tw.Flush()
	}
	total := "?"
	if s.Total >= 0 {
		total = fmt.Sprint(s.Total)
	}
	rows := fmt.Sprintf("%d of %s resolved, %.1f rows/min", s.Resolved, total, s.RowsPerMin)
	if left := timeLeft(s.Status); left != "" {
		rows += ", " + left + " left"
	}
	line("Rows", "%s", rows)
	line("Outcomes", "%s", outcomeList(s.Counts))
	imp, err := st.Import(ctx, s.ID)
	if err != nil {
		return unfinished(err)
	}
	p, err := st.Progress(ctx, s.ID)
	if err != nil {
		return unfinished(err)
	}
	if !imp.ExpiresAt.IsZero() && time.Now().After(imp.ExpiresAt) {
		line("Rows kept", "no: deleted from Redis at %s, after the retention period", imp.ExpiresAt.Local().Format(time.RFC3339))
		return tw.Flush()
	}
	switch _, err := os.Stat(filepath.Join(s.ReportDir, report.SummaryFile)); {
	case err == nil || !imp.Finished():
		line("Report", "%s", s.ReportDir+string(filepath.Separator))
	default:
		// A worker wrote it, into its own --report-dir: this folder
		// holds the run's receipt at most.
		line("Report", "written by a worker, into its --report-dir (%s/ there); 'importer report %s' writes it here, into %s", s.ID, s.ID, s.ReportDir+string(filepath.Separator))
	}
	rev, err := jobs.ReviewImport(imp, p, st.Rows(ctx, s.ID, max(imp.Total, 0)), filepath.Join(s.ReportDir, report.FailedFile), true)
	if err != nil {
		return unfinished(err)
	}
	label := "Top errors:"
	for _, e := range rev.TopErrors {
		fmt.Fprintf(tw, "%s\t%d × %s: %s\n", label, e.Rows, e.Code, e.Error)
		label = ""
	}
	label = "Next:"
	for _, step := range rev.NextSteps {
		fmt.Fprintf(tw, "%s\t%s\n", label, step)
		label = ""
	}
	return tw.Flush()
}

func newReportCommand(getenv env, stdout io.Writer) *cobra.Command {
	var r redisOnly
	var dir string
	cmd := &cobra.Command{
		Use:   "report IMPORT_ID",
		Short: "Write an import's report files again, from Redis, on this machine",
		Long: `report writes results.csv, failed.csv and summary.json of an import from what
Redis holds, into --report-dir/<import id>/. It works on any machine that
reaches the Redis, for a finished import or, as it stands, a running one
(rows without an outcome yet show as "pending").`,
		Args: exactlyOne("report", "IMPORT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageError("--report-dir: %v", err)
			}
			imports, closeRedis, err := r.imports(ctx, "report", abs)
			if err != nil {
				return err
			}
			defer closeRedis()
			if err := checkWritable(abs); err != nil {
				return err
			}
			id := args[0]
			out, finished, err := imports.Report(ctx, id)
			var expired *jobs.RowsExpiredError
			switch {
			case errors.Is(err, importer.ErrImportNotFound):
				return usageError("no import %s in Redis", id)
			case errors.As(err, &expired):
				return usageError("%v; 'importer status %s' still shows its counts", err, id)
			case err != nil:
				return unfinished(err)
			case finished:
				fmt.Fprintf(stdout, "import %s is finished\n", id)
			}
			fmt.Fprintf(stdout, "report: %s\n", relative(out))
			return nil
		},
	}
	r.register(cmd, getenv)
	reportDirFlag(cmd, getenv, &dir, "folder that receives <import id>/")
	return cmd
}

func newCancelCommand(getenv env, stdout io.Writer) *cobra.Command {
	var r redisOnly
	var dir string
	cmd := &cobra.Command{
		Use:   "cancel IMPORT_ID",
		Short: "Stop sending an import's rows; rows already sent are followed to their outcome",
		Long: `cancel stops an import from sending any more rows. Rows already sent are still
followed to their outcome; the others end as "cancelled" in the report,
which is written as usual once every row has an outcome.`,
		Args: exactlyOne("cancel", "IMPORT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageError("--report-dir: %v", err)
			}
			imports, closeRedis, err := r.imports(ctx, "cancel", abs)
			if err != nil {
				return err
			}
			defer closeRedis()
			id := args[0]
			if err := imports.Cancel(ctx, id); err != nil {
				return cancelError(id, err)
			}
			fmt.Fprintf(stdout, "import %s cancelled: no more rows are sent; rows already sent are followed to their outcome\n", id)
			return nil
		},
	}
	r.register(cmd, getenv)
	reportDirFlag(cmd, getenv, &dir, "folder that receives <import id>/ when the cancel ends the import")
	return cmd
}

func newApproveCommand(getenv env, stdout io.Writer) *cobra.Command {
	var r redisOnly
	cmd := &cobra.Command{
		Use:   "approve IMPORT_ID",
		Short: "Let a sync's plan that its guards refused be written, once it is checked",
		Long: `approve lets an import whose plan was refused by --max-creates or
--max-updates (a schedule's max_creates, max_updates) pass them: check its
plan.csv first. Nothing is sent by approve itself: the schedule's next firing,
or the same 'importer run' again, plans the import anew (with the residents
listed then) and writes it. An import that finished cannot be approved.`,
		Example: `  importer status roster-1a2b3c4d5e6f      # stopped: the plan would create 180 of 200 rows...
  importer approve roster-1a2b3c4d5e6f`,
		Args: exactlyOne("approve", "IMPORT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			imports, closeRedis, err := r.imports(ctx, "approve", "")
			if err != nil {
				return err
			}
			defer closeRedis()
			id := args[0]
			if err := imports.Approve(ctx, id); err != nil {
				return cancelError(id, err)
			}
			fmt.Fprintf(stdout, "import %s approved: its guards no longer hold its plan; its schedule's next firing, or the same 'importer run' again, writes it\n", id)
			return nil
		},
	}
	r.register(cmd, getenv)
	return cmd
}

// cancelError says why an import cannot be cancelled, with the exit code.
func cancelError(id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, importer.ErrImportNotFound):
		return usageError("no import %s in Redis", id)
	case errors.Is(err, jobs.ErrFinished):
		return usageError("import %s has already finished", id)
	}
	return unfinished(err)
}

func newVersionCommand(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the importer's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(stdout, "importer", version())
		},
	}
}

// version is the module version and VCS revision the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " (" + rev + dirty + ")"
	}
	return v + " " + info.GoVersion
}
