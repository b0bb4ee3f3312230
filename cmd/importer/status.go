package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/store"
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
	rdb, err := connectRedis(ctx, r.url)
	if err != nil {
		return nil, nil, err
	}
	return store.New(rdb.Client), func() { rdb.Close() }, nil
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
func lostStatus(rc report.Receipt, reportDir string) importStatus {
	return importStatus{Status: importer.Status{ID: rc.ImportID, File: rc.File, State: "lost", StartedAt: rc.StartedAt, Total: -1, Counts: map[importer.Outcome]int{},
		Stopped: "Redis no longer has this import (it lost its data: restarted without persistence, or flushed); run its file again to recover it"},
		ReportDir: report.Dir(reportDir, rc.ImportID)}
}

func newStatusCommand(getenv env, stdout io.Writer) *cobra.Command {
	var r redisOnly
	var asJSON bool
	var reportDir string
	cmd := &cobra.Command{
		Use:   "status [IMPORT_ID]",
		Short: "Show the imports in Redis, or one of them: progress and counts",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, closeRedis, err := r.open(ctx, "status")
			if err != nil {
				return err
			}
			defer closeRedis()
			ids := args
			if len(ids) == 0 {
				if ids, err = st.Imports(ctx); err != nil {
					return unfinished(err)
				}
			}
			absDir, _ := filepath.Abs(reportDir)
			var all []importStatus
			for _, id := range ids {
				s, err := statusOf(ctx, st, id)
				if errors.Is(err, importer.ErrImportNotFound) {
					if rc, ok, _ := report.ReadReceipt(absDir, id); ok {
						all = append(all, lostStatus(rc, absDir))
						continue
					}
					return usageError("no import %s in Redis", id)
				}
				if err != nil {
					return unfinished(err)
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
			if asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if len(args) == 1 {
					return enc.Encode(all[0])
				}
				if all == nil {
					all = []importStatus{}
				}
				return enc.Encode(all)
			}
			if len(all) == 0 {
				fmt.Fprintln(stdout, "no imports")
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
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
				var counts []string
				for _, o := range importer.Outcomes {
					if n := s.Counts[o]; n > 0 {
						counts = append(counts, fmt.Sprintf("%d %s", n, o))
					}
				}
				left := ""
				if s.SecondsLeft > 0 {
					left = (time.Duration(s.SecondsLeft) * time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%s\t%s\t%.1f\t%s\n", s.ID, s.File, s.State, s.StartedAt.Local().Format("2006-01-02 15:04"),
					s.Resolved, total, strings.Join(counts, ", "), s.RowsPerMin, left)
			}
			return tw.Flush()
		},
	}
	r.register(cmd, getenv)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	reportDirFlag(cmd, getenv, &reportDir, "folder of this machine's reports, where imports Redis lost are still known")
	return cmd
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
			st, closeRedis, err := r.open(ctx, "report")
			if err != nil {
				return err
			}
			defer closeRedis()
			imp, err := st.Import(ctx, args[0])
			if errors.Is(err, importer.ErrImportNotFound) {
				return usageError("no import %s in Redis", args[0])
			}
			if err != nil {
				return unfinished(err)
			}
			if !imp.ExpiresAt.IsZero() && time.Now().After(imp.ExpiresAt) {
				return usageError("the rows of import %s were deleted from Redis at %s, after its retention; 'importer status %s' still shows its counts",
					imp.ID, imp.ExpiresAt.Local().Format(time.RFC3339), imp.ID)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageError("--report-dir: %v", err)
			}
			if err := checkWritable(abs); err != nil {
				return err
			}
			out, err := reportWriter{store: st, dir: abs}.WriteReport(ctx, imp)
			if err != nil {
				return unfinished(err)
			}
			// Every row has its outcome but no worker wrote the report (its
			// folder could not be written, say): this report ends it.
			if p, err := st.Progress(ctx, imp.ID); err == nil && p.Done() && !imp.Finished() {
				if err := st.Finish(ctx, imp.ID, time.Now()); err != nil {
					return unfinished(err)
				}
				fmt.Fprintf(stdout, "import %s is finished\n", imp.ID)
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
			st, closeRedis, err := r.open(ctx, "cancel")
			if err != nil {
				return err
			}
			defer closeRedis()
			id := args[0]
			abs, err := filepath.Abs(dir)
			if err != nil {
				return usageError("--report-dir: %v", err)
			}
			if err := cancelImport(ctx, st, id, reportFinisher{st: st, dir: abs}.finish); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "import %s cancelled: no more rows are sent; rows already sent are followed to their outcome\n", id)
			return nil
		},
	}
	r.register(cmd, getenv)
	reportDirFlag(cmd, getenv, &dir, "folder that receives <import id>/ when the cancel ends the import")
	return cmd
}

// cancelImport cancels an unfinished import; finish writes its report when
// the cancel ends it.
func cancelImport(ctx context.Context, st *store.Store, id string, finish func(ctx context.Context, id string) error) error {
	imp, err := st.Import(ctx, id)
	if errors.Is(err, importer.ErrImportNotFound) {
		return usageError("no import %s in Redis", id)
	}
	if err != nil {
		return unfinished(err)
	}
	if imp.Finished() {
		return usageError("import %s has already finished", id)
	}
	if _, err := st.Cancel(ctx, id, time.Now()); err != nil {
		return unfinished(err)
	}
	// Every row not sent yet ends cancelled at once (no send can start
	// after the cancel: see MarkSending); rows being sent or followed go on
	// to their outcome. With none of those, the import ends now.
	if err := cancelUnsent(ctx, st, imp, finish); err != nil {
		return unfinished(err)
	}
	return nil
}

// cancelUnsent resolves as cancelled the rows of a cancelled import that
// were never sent, and ends the import when that was the last of them.
func cancelUnsent(ctx context.Context, st *store.Store, imp importer.Import, finish func(ctx context.Context, id string) error) error {
	const batch = 500
	for first := 1; first <= imp.Total; first += batch {
		var rows []int
		for n := first; n < first+batch && n <= imp.Total; n++ {
			rows = append(rows, n)
		}
		states, err := st.RowStates(ctx, imp.ID, rows)
		if err != nil {
			return err
		}
		for i, s := range states {
			if s.Resolved || s.Sending || s.JobID != "" {
				continue
			}
			res, err := st.CancelUnsent(ctx, imp.ID, importer.RowResult{Row: rows[i], Outcome: importer.Cancelled, ErrorCode: importer.CodeCancelled,
				Error: "not sent: the import was cancelled", At: time.Now().UTC()})
			if err != nil {
				return err
			}
			if res.Done {
				return finish(ctx, imp.ID)
			}
		}
	}
	return nil
}

// reportFinisher writes the report of an import that ended outside a
// worker into this process's report folder, and marks it finished.
type reportFinisher struct {
	st  *store.Store
	dir string
}

func (f reportFinisher) finish(ctx context.Context, id string) error {
	imp, err := f.st.Import(ctx, id)
	if err != nil {
		return err
	}
	if _, err := (reportWriter{store: f.st, dir: f.dir}).WriteReport(ctx, imp); err != nil {
		return err
	}
	return f.st.Finish(ctx, id, time.Now())
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
