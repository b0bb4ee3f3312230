package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// TypeScheduledImport starts the imports of the files waiting in an inbox:
// the scheduler enqueues it at each firing of a schedule entry.
const TypeScheduledImport = "import:scheduled"

// ScheduledImport is the payload of an import:scheduled task: a schedule
// entry.
type ScheduledImport struct {
	// Name names the entry, for logs and the dashboard.
	Name string `json:"name"`
	// Inbox is a path or glob of the files to import, e.g.
	// /data/inbox/*.csv. Claimed files move to processing/ beside them,
	// and to done/ or failed/ when their import ends.
	Inbox string `json:"inbox"`
	// Options are the import's options (Format empty: by extension).
	Options importer.Options `json:"options"`
	// ReportDir receives the reports.
	ReportDir string `json:"report_dir"`
	// Retention is how long the rows stay in Redis after the report.
	Retention time.Duration `json:"retention,omitempty"`
}

// The folders beside an inbox.
const (
	ProcessingDir = "processing"
	DoneDir       = "done"
	FailedDir     = "failed"
)

// Opener opens an input file as rows, in the given format or, when format
// is empty, the one its name says; the worker wires the source readers.
type Opener func(path string, format string) (RowReader, io.Closer, error)

// NewScheduledImportTask returns the task of a schedule entry. The task is
// unique for a short while, so that two scheduler replicas firing together
// queue it once; and the files are claimed by renaming, so even two runs
// cannot import a file twice.
func NewScheduledImportTask(s ScheduledImport) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewTask(TypeScheduledImport, b), []asynq.Option{
		asynq.Queue(QueueFinalize), asynq.MaxRetry(3), asynq.Unique(5 * time.Second), asynq.Timeout(time.Hour),
	}, nil
}

// ScheduledImport handles import:scheduled: every file of the inbox is
// claimed, validated and split into submit tasks; its import ends like any
// other, and its finalize moves the file to done/ or failed/.
func (h *Handlers) ScheduledImport(ctx context.Context, t *asynq.Task) error {
	var s ScheduledImport
	if err := json.Unmarshal(t.Payload(), &s); err != nil {
		return fmt.Errorf("bad %s payload: %v: %w", TypeScheduledImport, err, asynq.SkipRetry)
	}
	if h.cfg.Open == nil || h.splits == nil {
		return fmt.Errorf("this worker cannot read files: %w", asynq.SkipRetry)
	}
	files, err := filepath.Glob(s.Inbox)
	if err != nil {
		return fmt.Errorf("schedule %s: inbox %q: %v: %w", s.Name, s.Inbox, err, asynq.SkipRetry)
	}
	sort.Strings(files)
	for _, file := range files {
		if info, err := os.Stat(file); err != nil || !info.Mode().IsRegular() {
			continue
		}
		claimed, err := claim(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue // another firing claimed it first
		}
		if err != nil {
			return fmt.Errorf("schedule %s: error claiming %s: %w", s.Name, file, err)
		}
		if err := h.startFileImport(ctx, s, claimed); err != nil {
			h.log.ErrorContext(ctx, "scheduled import refused", "schedule", s.Name, "file", claimed, "error", err)
			moveTo(claimed, FailedDir)
			note := filepath.Join(filepath.Dir(filepath.Dir(claimed)), FailedDir, filepath.Base(claimed)+".error.txt")
			os.WriteFile(note, []byte(err.Error()+"\n"), 0o600)
		}
	}
	return nil
}

// claim moves a file into processing/ beside it. The rename is atomic: of
// two workers claiming one file, one wins and the other finds nothing.
func claim(file string) (string, error) {
	dir := filepath.Join(filepath.Dir(file), ProcessingDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dest := filepath.Join(dir, filepath.Base(file))
	if _, err := os.Stat(dest); err == nil {
		dest = filepath.Join(dir, time.Now().UTC().Format("20060102T150405")+"-"+filepath.Base(file))
	}
	return dest, os.Rename(file, dest)
}

// moveTo moves a claimed file from processing/ to a sibling folder.
func moveTo(claimed, folder string) (string, error) {
	dir := filepath.Join(filepath.Dir(filepath.Dir(claimed)), folder)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dest := filepath.Join(dir, filepath.Base(claimed))
	return dest, os.Rename(claimed, dest)
}

func (h *Handlers) startFileImport(ctx context.Context, s ScheduledImport, path string) error {
	opts, err := s.Options.Normalize()
	if err != nil {
		return err
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	base := filepath.Base(path)
	id := importer.NewImportID(base, sum, opts)
	// Read the whole file once first: a broken file is refused before a
	// single row is queued.
	if err := h.scan(path, opts.Format); err != nil {
		return err
	}
	rows, closer, err := h.cfg.Open(path, opts.Format)
	if err != nil {
		return err
	}
	defer closer.Close()
	imp := importer.Import{ID: id, File: base, FileSHA256: hex.EncodeToString(sum), Options: opts, ReportDir: s.ReportDir,
		CreatedAt: time.Now().UTC(), Total: -1, SourcePath: path, Retention: s.Retention}
	stored, created, err := h.splits.CreateImport(ctx, imp)
	if err != nil {
		return err
	}
	if !created && stored.Finished() {
		// The same file with the same options was imported before: it is
		// the same import, and nothing is sent again.
		h.log.InfoContext(ctx, "scheduled file already imported", "schedule", s.Name, "import_id", id, "file", base)
		stored.SourcePath = path
		h.fileDone(ctx, stored)
		return nil
	}
	res, err := Split(ctx, h.queue, h.splits, stored, rows)
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "scheduled import started", "schedule", s.Name, "import_id", id, "file", base, "rows", res.Total)
	return nil
}

func (h *Handlers) scan(path, format string) error {
	rows, closer, err := h.cfg.Open(path, format)
	if err != nil {
		return err
	}
	defer closer.Close()
	n := 0
	for {
		_, err := rows.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: the file holds no records", filepath.Base(path))
	}
	return nil
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// fileDone moves a scheduled import's file to done/ (every row succeeded)
// or failed/, once its report is written.
func (h *Handlers) fileDone(ctx context.Context, imp importer.Import) {
	if imp.SourcePath == "" {
		return
	}
	if h.splits == nil {
		return
	}
	p, err := h.splits.Progress(ctx, imp.ID)
	if err != nil {
		return
	}
	folder := FailedDir
	if p.Counts[importer.Succeeded] == p.Total {
		folder = DoneDir
	}
	if dest, err := moveTo(imp.SourcePath, folder); err == nil {
		h.log.InfoContext(ctx, "scheduled file filed", "import_id", imp.ID, "file", dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		h.log.WarnContext(ctx, "cannot file the imported file", "import_id", imp.ID, "file", imp.SourcePath, "error", err)
	}
}
