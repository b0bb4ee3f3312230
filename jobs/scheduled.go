package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/schedule"
	"github.com/propexo-importer/importer/internal/source"
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
	// ReportSubdir is the subfolder of the workers' own report folder
	// that receives the reports (a name, never a path of its own: the
	// workers write only under their folder).
	ReportSubdir string `json:"report_subdir,omitempty"`
	// Retention is how long the rows stay in Redis after the report.
	Retention time.Duration `json:"retention,omitempty"`
	// Settle is how long a file must have been left unchanged before it
	// is claimed: a file still being written is not. Zero: at once.
	Settle time.Duration `json:"settle,omitempty"`
	// ReadyMarker, when set, is the suffix of the file that says a file
	// is complete ("residents.csv" is claimed once "residents.csv.done"
	// exists); Settle is then not waited for.
	ReadyMarker string `json:"ready_marker,omitempty"`
	// ClaimTimeout is how long a claim's worker may go silent before
	// another worker takes the file over. Default
	// schedule.DefaultClaimTimeout.
	ClaimTimeout time.Duration `json:"claim_timeout,omitempty"`
	// Limits bound what a record of a file may hold (zero: the defaults).
	Limits importer.Limits `json:"limits,omitzero"`
	// Notify are the targets told about the entry's imports and firings
	// (by id: the scheduler saved their addresses).
	Notify []importer.NotifyTarget `json:"notify,omitempty"`
	// ExpectFile: a firing that finds no file is an event (no_file).
	ExpectFile bool `json:"expect_file,omitempty"`
	// AllowDroppedColumns imports a file that lacks a column the
	// schedule's last import read; without it such a file is refused
	// (see importer.DroppedColumns).
	AllowDroppedColumns bool `json:"allow_dropped_columns,omitempty"`
	// RetryTransient retries the rows a retry can mend by themselves
	// (see importer.Import.RetryTransient); zero: never.
	RetryTransient time.Duration `json:"retry_transient,omitempty"`
	// Cron is the entry's cron spec, for the schedules page.
	Cron string `json:"cron,omitempty"`
}

// The folders beside an inbox.
const (
	ProcessingDir = "processing"
	DoneDir       = "done"
	FailedDir     = "failed"
)

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

// StartScheduled handles import:scheduled. First it looks after the files
// already in processing/: one whose import finished is filed, one whose
// import stopped is resumed, one whose worker died before its import was
// under way is taken over. Then every complete file of the inbox is
// claimed, validated and split into stored rows; its import ends like any
// other, and its finalize moves the file to done/ or failed/. A file's
// content (with the entry's options) is its import, whatever its name: a
// copy of a file already imported, or being imported, is not imported
// again. The inbox is a local folder, a folder on an SFTP server or a
// bucket's prefix: the same steps on each (fetch.Folder).
func (sr *Starting) StartScheduled(ctx context.Context, s ScheduledImport) error {
	if s.ClaimTimeout <= 0 {
		s.ClaimTimeout = schedule.DefaultClaimTimeout
	}
	firing := importer.Firing{ID: firingID(ctx), At: time.Now().UTC()}
	root, pattern, err := fetch.SplitInbox(s.Inbox)
	if err != nil {
		return fmt.Errorf("schedule %s: %v: %w", s.Name, err, asynq.SkipRetry)
	}
	folder, err := fetch.OpenFolder(ctx, root, sr.cfg.Sources)
	if err != nil {
		// An SFTP server or a bucket out of reach: the task's retries, then
		// the next firing, try again.
		return fmt.Errorf("schedule %s: %v", s.Name, err)
	}
	defer func() {
		if err := folder.Close(); err != nil {
			sr.log.WarnContext(ctx, "error closing an inbox", "schedule", s.Name, "error", err)
		}
	}()
	firing.Imports = sr.sweepProcessing(ctx, s, folder)
	files, err := folder.List(ctx, "")
	if err != nil {
		return fmt.Errorf("schedule %s: inbox %s: %v", s.Name, fetch.Redact(s.Inbox), err)
	}
	var waiting, already int
	for _, file := range files {
		if matched, _ := path.Match(pattern, file.Name); !matched || !inboxFile(s, file.Name) {
			continue
		}
		if !sr.ready(ctx, folder, s, file) {
			waiting++
			continue
		}
		claimed, err := sr.claim(ctx, s, folder, file.Name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // another firing claimed it first
		}
		if err != nil {
			return fmt.Errorf("schedule %s: error claiming %s: %w", s.Name, fetch.Redact(folder.Address(file.Name)), err)
		}
		res := sr.importClaimed(ctx, s, folder, claimed, "")
		switch {
		case res.refused != "":
			firing.Refused = append(firing.Refused, file.Name)
			firing.Detail = res.refused
			sr.announceFiring(ctx, s, importer.EventFileRefused, fetch.Redact(folder.Address(claimed)), file.Name, res.refused)
		case res.already:
			already++
		case res.importID != "":
			firing.Imports = append(firing.Imports, res.importID)
		}
	}
	switch {
	case len(firing.Imports) > 0:
		firing.Outcome = importer.FiringImported
	case len(firing.Refused) > 0:
		firing.Outcome = importer.FiringRefused
	case already > 0:
		firing.Outcome, firing.Detail = importer.FiringAlreadyImported, fmt.Sprintf("%d file(s) already imported; nothing was sent", already)
	case waiting > 0:
		firing.Outcome, firing.Detail = importer.FiringWaiting, fmt.Sprintf("%d file(s) not complete yet (settling, or waiting for their ready marker)", waiting)
	default:
		firing.Outcome = importer.FiringNoFile
		if s.ExpectFile {
			sr.announceFiring(ctx, s, importer.EventNoFile, firing.ID, "", "no file matched "+fetch.Redact(s.Inbox))
		}
	}
	if err := sr.store.RecordFiring(ctx, s.Name, firing); err != nil {
		sr.log.WarnContext(ctx, "cannot record a firing", "schedule", s.Name, "error", err)
	}
	return nil
}

// firingID names the firing a scheduled task runs for: the task's id, the
// same when Asynq runs the task again; outside a task, the minute.
func firingID(ctx context.Context) string {
	if id, ok := asynq.GetTaskID(ctx); ok {
		return id
	}
	return time.Now().UTC().Format("20060102T1504")
}

// inboxFile reports whether a file matched by the inbox's pattern is one
// to import: not hidden, not a note the importer wrote, not a ready marker.
func inboxFile(s ScheduledImport, name string) bool {
	return !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".error.txt") && !strings.HasSuffix(name, ".note.txt") &&
		(s.ReadyMarker == "" || !strings.HasSuffix(name, s.ReadyMarker))
}

// ready reports whether an inbox file is complete and the inbox's own (a
// local link that points out of the inbox is not): either its ready marker
// is there or it has been left unchanged for the settle time.
func (sr *Starting) ready(ctx context.Context, folder fetch.Folder, s ScheduledImport, file fetch.FileInfo) bool {
	if file.Outside {
		sr.log.WarnContext(ctx, "a link in the inbox points outside it: not followed", "schedule", s.Name, "file", folder.Address(file.Name))
		return false
	}
	if s.ReadyMarker != "" {
		_, err := folder.Stat(ctx, file.Name+s.ReadyMarker)
		return err == nil
	}
	return time.Since(file.ModTime) >= s.Settle
}

// claimRecord is kept beside a claimed file in processing/ (as
// .<name>.claim): when it was claimed and, once registered, its import. A
// worker that takes a file over reads it to know whether the import
// existed.
type claimRecord struct {
	ClaimedAt time.Time `json:"claimed_at"`
	ImportID  string    `json:"import_id,omitempty"`
}

// claimRecordName is the name of a claimed file's record, beside it.
func claimRecordName(claimed string) string {
	return path.Join(path.Dir(claimed), "."+path.Base(claimed)+".claim")
}

func readClaimRecord(ctx context.Context, folder fetch.Folder, claimed string) (claimRecord, bool) {
	var c claimRecord
	r, err := folder.Open(ctx, claimRecordName(claimed))
	if err != nil {
		return c, false
	}
	defer r.Close()
	return c, json.NewDecoder(io.LimitReader(r, 1<<16)).Decode(&c) == nil
}

func writeClaimRecord(ctx context.Context, folder fetch.Folder, claimed string, c claimRecord) error {
	b, _ := json.Marshal(c)
	return folder.Write(ctx, claimRecordName(claimed), b)
}

// claim moves a file into processing/ beside it, under a name no other
// claimed file has, and returns its new name. Of two workers claiming one
// file, one wins and the other finds nothing: the file's lease in Redis is
// taken first, and the move is atomic where the folder allows (a bucket
// copies, then deletes: the lease alone keeps it once). The claimed name's
// lease and record are made before the move, so a file in processing/
// always has them while its worker lives.
func (sr *Starting) claim(ctx context.Context, s ScheduledImport, folder fetch.Folder, name string) (string, error) {
	source := folder.Address(name)
	if ok, err := sr.store.Claim(ctx, source, sr.owner, s.ClaimTimeout); err != nil || !ok {
		if err == nil {
			err = fs.ErrNotExist
		}
		return "", err
	}
	defer func() {
		if err := sr.store.Unclaim(ctx, source, sr.owner); err != nil {
			sr.log.WarnContext(ctx, "cannot give up the claim of an inbox file (it times out)", "file", fetch.Redact(source), "error", err)
		}
	}()
	if _, err := folder.Stat(ctx, name); err != nil {
		return "", fs.ErrNotExist // claimed and moved by another while this one listed
	}
	dest := ProcessingDir + "/" + name
	if _, err := folder.Stat(ctx, dest); err == nil {
		dest = ProcessingDir + "/" + uniqueName(name)
	}
	if ok, err := sr.store.Claim(ctx, folder.Address(dest), sr.owner, s.ClaimTimeout); err != nil || !ok {
		if err == nil {
			err = fs.ErrNotExist
		}
		return "", err
	}
	if err := writeClaimRecord(ctx, folder, dest, claimRecord{ClaimedAt: time.Now().UTC()}); err != nil {
		return "", errors.Join(err, sr.store.Unclaim(ctx, folder.Address(dest), sr.owner))
	}
	if err := folder.Rename(ctx, name, dest); err != nil {
		_ = folder.Remove(ctx, claimRecordName(dest)) // a record left alone is passed over with its file gone
		return "", errors.Join(err, sr.store.Unclaim(ctx, folder.Address(dest), sr.owner))
	}
	if s.ReadyMarker != "" {
		if err := folder.Remove(ctx, name+s.ReadyMarker); err != nil {
			sr.log.WarnContext(ctx, "cannot remove a ready marker", "file", fetch.Redact(folder.Address(name+s.ReadyMarker)), "error", err)
		}
	}
	return dest, nil
}

// uniqueName gives a file a name of its own: its time of claim and a short
// random tag before it.
func uniqueName(name string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b) + "-" + name
}

// sweepProcessing looks after the files in processing/ that no worker
// holds: their import finished (filed), stopped (resumed: its rows are
// sent again), under way (left alone), gone from Redis or never made
// because its worker died (taken over, once the claim has timed out).
func (sr *Starting) sweepProcessing(ctx context.Context, s ScheduledImport, folder fetch.Folder) (taken []string) {
	files, err := folder.List(ctx, ProcessingDir)
	if err != nil {
		sr.log.WarnContext(ctx, "cannot list an inbox's processing/", "schedule", s.Name, "error", err)
		return nil
	}
	for _, file := range files {
		if strings.HasPrefix(file.Name, ".") || file.Outside {
			continue
		}
		claimed := ProcessingDir + "/" + file.Name
		address := folder.Address(claimed)
		if held, err := sr.store.Claimed(ctx, address); err != nil || held {
			continue
		}
		rec, _ := readClaimRecord(ctx, folder, claimed)
		if rec.ImportID != "" {
			imp, err := sr.store.Import(ctx, rec.ImportID)
			switch {
			case err == nil && imp.Finished():
				imp.SourcePath = address
				sr.fileDone(ctx, imp, "")
				continue
			case err == nil && imp.Stopped != "":
				// Stopped (the API rejected the key, say): started again,
				// it resumes, and its file is filed when it ends.
			case err == nil:
				continue // under way
			case !errors.Is(err, importer.ErrImportNotFound):
				continue // Redis trouble: look again at the next firing
			}
		} else if time.Since(rec.ClaimedAt) < s.ClaimTimeout {
			continue
		}
		if ok, err := sr.store.Claim(ctx, address, sr.owner, s.ClaimTimeout); err != nil || !ok {
			continue
		}
		sr.log.InfoContext(ctx, "taking up a claimed file no worker holds", "schedule", s.Name, "file", fetch.Redact(address), "import_id", rec.ImportID)
		if res := sr.importClaimed(ctx, s, folder, claimed, rec.ImportID); res.importID != "" {
			taken = append(taken, res.importID)
		} else if res.refused != "" {
			sr.announceFiring(ctx, s, importer.EventFileRefused, fetch.Redact(address), file.Name, res.refused)
		}
	}
	return taken
}

// claimResult is what became of a claimed file: the import it started or
// resumed, or why it was refused, or that its content was imported before.
type claimResult struct {
	importID string
	refused  string
	already  bool
}

// importClaimed imports a claimed file, or files it in failed/ with the
// reason; importID, when set, is the import its claim record names (stopped,
// or lost with Redis's data). The claim's lease is kept while the file is
// read, and given up once the import owns the file.
func (sr *Starting) importClaimed(ctx context.Context, s ScheduledImport, folder fetch.Folder, claimed, importID string) claimResult {
	address := folder.Address(claimed)
	keep, stop := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(max(s.ClaimTimeout/3, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-keep.Done():
				return
			case <-tick.C:
				if _, err := sr.store.Claim(ctx, address, sr.owner, s.ClaimTimeout); err != nil {
					sr.log.WarnContext(ctx, "cannot renew the claim of a file being read", "file", fetch.Redact(address), "error", err)
				}
			}
		}
	}()
	res, err := sr.startClaimed(ctx, s, folder, claimed, importID)
	stop()
	if uerr := sr.store.Unclaim(ctx, address, sr.owner); uerr != nil {
		sr.log.WarnContext(ctx, "cannot give up the claim of a file (it times out)", "file", fetch.Redact(address), "error", uerr)
	}
	if err != nil {
		sr.log.ErrorContext(ctx, "scheduled import refused", "schedule", s.Name, "file", fetch.Redact(address), "error", err)
		if _, ferr := fileAway(ctx, folder, claimed, FailedDir, err.Error(), ".error.txt"); ferr != nil {
			sr.log.ErrorContext(ctx, "cannot file a refused file in failed/", "schedule", s.Name, "file", fetch.Redact(address), "error", ferr)
		}
		return claimResult{refused: err.Error()}
	}
	return res
}

// fileAway moves a claimed file from processing/ to a sibling folder, under
// a name no file there has, with a note beside it (its name and suffix)
// when one is given. It returns where the file went.
func fileAway(ctx context.Context, folder fetch.Folder, claimed, to, note, suffix string) (string, error) {
	dest := to + "/" + path.Base(claimed)
	if _, err := folder.Stat(ctx, dest); err == nil {
		dest = to + "/" + uniqueName(path.Base(claimed))
	}
	if err := folder.Rename(ctx, claimed, dest); err != nil {
		return "", err
	}
	if err := folder.Remove(ctx, claimRecordName(claimed)); err != nil {
		return dest, fmt.Errorf("error removing the claim record of %s: %w", path.Base(claimed), err)
	}
	if note != "" {
		if err := folder.Write(ctx, dest+suffix, []byte(note+"\n")); err != nil {
			return dest, fmt.Errorf("error writing the note of %s: %w", path.Base(dest), err)
		}
	}
	return dest, nil
}

// startClaimed starts the import of a claimed file through Start, as
// 'importer run' would, with the schedule's options and limits; its claim
// record is the import's trace. A remote file is read from a private copy,
// removed once its rows are stored.
func (sr *Starting) startClaimed(ctx context.Context, s ScheduledImport, folder fetch.Folder, claimed, importID string) (claimResult, error) {
	base := path.Base(claimed)
	opts := s.Options
	if opts.Format == "" {
		format, err := source.FormatOf(base, "")
		if err != nil {
			return claimResult{}, err
		}
		opts.Format = format
	}
	opts, err := opts.Normalize()
	if err != nil {
		return claimResult{}, err
	}
	local, ok := folder.Local(claimed)
	if !ok {
		copied, err := copyToPrivateFile(ctx, folder, claimed)
		if err != nil {
			return claimResult{}, err
		}
		defer os.Remove(copied)
		local = copied
	}
	f, err := Inspect(ctx, Input{Path: local, Shown: base, Name: base, Options: opts, Limits: s.Limits.WithDefaults()})
	if err != nil {
		return claimResult{}, err
	}
	if importID == "" && !s.AllowDroppedColumns {
		if err := sr.checkDropped(ctx, s, f); err != nil {
			return claimResult{}, err
		}
	}
	address := folder.Address(claimed)
	started, err := sr.Start(ctx, StartRequest{File: f, ImportID: importID, ReportSubdir: s.ReportSubdir, SourcePath: address,
		Retention: s.Retention, RetryTransient: s.RetryTransient, Trace: claimTrace{ctx: ctx, folder: folder, name: claimed}, Schedule: s.Name, Notify: s.Notify})
	var content *ContentImportedError
	switch {
	case errors.As(err, &content):
		return claimResult{already: true}, sr.alreadyImported(ctx, s, folder, claimed, content.Other)
	case err != nil:
		return claimResult{}, err
	case started.Finished:
		started.Import.SourcePath = address
		sr.fileDone(ctx, started.Import, "")
		return claimResult{already: true}, nil
	}
	sr.log.InfoContext(ctx, "scheduled import started", "schedule", s.Name, "import_id", started.Import.ID, "file", base, "rows", started.Split.Total,
		"created", started.Created, "resumed", started.Resumed, "recovered", started.Import.Recovery != nil)
	return claimResult{importID: started.Import.ID}, nil
}

// copyToPrivateFile copies a remote file into a temporary file only this
// user can read, and returns its path.
func copyToPrivateFile(ctx context.Context, folder fetch.Folder, name string) (string, error) {
	shown := fetch.Redact(folder.Address(name))
	r, err := folder.Open(ctx, name)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", shown, err)
	}
	defer r.Close()
	copied, err := fetch.Spool(r, "importer-inbox-*")
	var read *fetch.ReadError
	switch {
	case errors.As(err, &read):
		return "", fmt.Errorf("cannot read %s: %v", shown, read.Err)
	case err != nil:
		return "", fmt.Errorf("error keeping a copy of %s: %w", shown, err)
	}
	return copied, nil
}

// checkDropped refuses a file that no longer fills a field the schedule's
// last import read: a renamed column would leave that field as it is, night
// after night, without a word.
func (sr *Starting) checkDropped(ctx context.Context, s ScheduledImport, f Inspected) error {
	_, imports, err := sr.store.ScheduleHistory(ctx, s.Name)
	if err != nil || len(imports) == 0 {
		return err
	}
	last, err := sr.store.Import(ctx, imports[0])
	if errors.Is(err, importer.ErrImportNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	gone := importer.DroppedColumns(last, f.Columns, f.Unsent.Unknown, f.Options.Mapping)
	if len(gone) == 0 {
		return nil
	}
	return fmt.Errorf("%s lacks %s that the schedule's last import (%s) read: %s; its %s would be left as %s without a word. Restore the column, map its new name in a mapping, or set allow_dropped_columns: true to import without it",
		f.Shown, pick(len(gone), "a column", "columns"), last.ID, strings.Join(gone, ", "), pick(len(gone), "field", "fields"), pick(len(gone), "it is", "they are"))
}

// pick is one or many, by n.
func pick(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// claimTrace is the trace of a scheduled file's import: its claim record,
// beside the file in processing/, where every worker of the inbox sees it.
type claimTrace struct {
	ctx    context.Context
	folder fetch.Folder
	name   string
}

func (c claimTrace) Started(importID string) (time.Time, string, bool, error) {
	rec, ok := readClaimRecord(c.ctx, c.folder, c.name)
	if !ok || rec.ImportID != importID {
		return time.Time{}, "", false, nil
	}
	return rec.ClaimedAt, "", true, nil
}

// Finished: a scheduled file whose import finished has left processing/
// with its claim record.
func (c claimTrace) Finished(string) (importer.Summary, bool) { return importer.Summary{}, false }

func (c claimTrace) Record(imp importer.Import, created bool) error {
	rec, _ := readClaimRecord(c.ctx, c.folder, c.name)
	if rec.ClaimedAt.IsZero() {
		rec.ClaimedAt = time.Now().UTC()
	}
	rec.ImportID = imp.ID
	return writeClaimRecord(c.ctx, c.folder, c.name, rec)
}

// alreadyImported files a copy of a file whose content is already an
// import's, beside a note that names it: nothing of it is sent again.
func (sr *Starting) alreadyImported(ctx context.Context, s ScheduledImport, folder fetch.Folder, claimed string, imp importer.Import) error {
	state := imp.State()
	note := fmt.Sprintf("the same content as import %s (%s, started %s from %s); nothing was sent again", imp.ID, state, imp.CreatedAt.Format(time.RFC3339), imp.File)
	dest, err := fileAway(ctx, folder, claimed, DoneDir, note, ".note.txt")
	if err != nil {
		return err
	}
	sr.log.InfoContext(ctx, "scheduled file already imported", "schedule", s.Name, "import_id", imp.ID, "file", fetch.Redact(folder.Address(dest)), "state", state)
	return nil
}

// fileDone moves a scheduled import's file to done/ (every row fine)
// or failed/, once its report is written (into reportDir, when known). A
// file that grew after it was read goes to failed/: its later rows were
// never read.
func (lc *lifecycle) fileDone(ctx context.Context, imp importer.Import, reportDir string) {
	if imp.SourcePath == "" {
		return
	}
	p, err := lc.store.Progress(ctx, imp.ID)
	if err != nil {
		return
	}
	where := "'importer report " + imp.ID + "' writes it"
	if reportDir != "" {
		where = "it is in " + reportDir
	}
	fine := importer.FineRows(p.Counts)
	folderName, note := FailedDir, fmt.Sprintf("import %s: %d of %d rows did not succeed; the report says why (%s)", imp.ID, p.Total-fine, p.Total, where)
	if fine == p.Total {
		folderName, note = DoneDir, ""
	}
	shown := fetch.Redact(imp.SourcePath)
	root, claimed := fetch.ParentOf(imp.SourcePath)
	folder, err := fetch.OpenFolder(ctx, root, lc.cfg.Sources)
	if err != nil {
		lc.log.WarnContext(ctx, "cannot file the imported file: its inbox is out of reach (the schedule's next firing files it)", "import_id", imp.ID, "file", shown, "error", err)
		return
	}
	defer func() {
		if err := folder.Close(); err != nil {
			lc.log.WarnContext(ctx, "error closing an inbox", "import_id", imp.ID, "error", err)
		}
	}()
	if info, err := folder.Stat(ctx, claimed); err == nil && imp.SourceSize > 0 && info.Size != imp.SourceSize {
		folderName = FailedDir
		note = fmt.Sprintf("the file grew after it was read (%d bytes, now %d): what was added was not imported, and its last record may have been cut short; import %s holds the rest (its report: %s)",
			imp.SourceSize, info.Size, imp.ID, where)
	}
	if dest, err := fileAway(ctx, folder, claimed, folderName, note, ".error.txt"); err == nil {
		lc.log.InfoContext(ctx, "scheduled file filed", "import_id", imp.ID, "file", fetch.Redact(folder.Address(dest)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		lc.log.WarnContext(ctx, "cannot file the imported file", "import_id", imp.ID, "file", shown, "error", err)
	}
}
