package jobs

import (
	"context"
	"crypto/rand"
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
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/schedule"
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
}

// The folders beside an inbox.
const (
	ProcessingDir = "processing"
	DoneDir       = "done"
	FailedDir     = "failed"
)

// Opener opens an input file as rows, in the options' format (or, when it
// is empty, the one its name says) and delimiter, within the limits,
// reading no more than its first size bytes (all of it when size is 0); the
// worker wires the source readers.
type Opener func(path string, opts importer.Options, limits importer.Limits, size int64) (RowReader, io.Closer, error)

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

// ScheduledImport handles import:scheduled. First it looks after the files
// already in processing/: one whose import finished is filed, one whose
// import stopped is resumed, one whose worker died before its import was
// under way is taken over. Then every complete file of the inbox is
// claimed, validated and split into stored rows; its import ends like any
// other, and its finalize moves the file to done/ or failed/. A file's
// content (with the entry's options) is its import, whatever its name: a
// copy of a file already imported, or being imported, is not imported
// again.
func (h *Handlers) ScheduledImport(ctx context.Context, t *asynq.Task) error {
	var s ScheduledImport
	if err := json.Unmarshal(t.Payload(), &s); err != nil {
		return fmt.Errorf("bad %s payload: %v: %w", TypeScheduledImport, err, asynq.SkipRetry)
	}
	if h.cfg.Open == nil || h.splits == nil {
		return fmt.Errorf("this worker cannot read files: %w", asynq.SkipRetry)
	}
	if s.ClaimTimeout <= 0 {
		s.ClaimTimeout = schedule.DefaultClaimTimeout
	}
	inboxDir := filepath.Dir(s.Inbox)
	h.sweepProcessing(ctx, s, inboxDir)
	files, err := filepath.Glob(s.Inbox)
	if err != nil {
		return fmt.Errorf("schedule %s: inbox %q: %v: %w", s.Name, s.Inbox, err, asynq.SkipRetry)
	}
	sort.Strings(files)
	for _, file := range files {
		if !h.ready(ctx, s, inboxDir, file) {
			continue
		}
		claimed, err := h.claim(ctx, s, file)
		if errors.Is(err, fs.ErrNotExist) {
			continue // another firing claimed it first
		}
		if err != nil {
			return fmt.Errorf("schedule %s: error claiming %s: %w", s.Name, file, err)
		}
		h.importClaimed(ctx, s, claimed, nil)
	}
	return nil
}

// ready reports whether an inbox file is complete and the inbox's own: a
// regular file (or a link to one inside the inbox), not a marker, not
// hidden, and either its ready marker is there or it has been left
// unchanged for the settle time.
func (h *Handlers) ready(ctx context.Context, s ScheduledImport, inboxDir, file string) bool {
	name := filepath.Base(file)
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".error.txt") ||
		(s.ReadyMarker != "" && strings.HasSuffix(name, s.ReadyMarker)) {
		return false
	}
	info, err := os.Lstat(file)
	if err != nil {
		return false
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(file)
		if err != nil || !within(inboxDir, target) {
			h.log.WarnContext(ctx, "a link in the inbox points outside it: not followed", "schedule", s.Name, "file", file)
			return false
		}
		if info, err = os.Stat(target); err != nil {
			return false
		}
	}
	if !info.Mode().IsRegular() {
		return false
	}
	if s.ReadyMarker != "" {
		_, err := os.Stat(file + s.ReadyMarker)
		return err == nil
	}
	return time.Since(info.ModTime()) >= s.Settle
}

// within reports whether path is inside dir (both resolved).
func within(dir, path string) bool {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(real, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// claimRecord is kept beside a claimed file in processing/ (as
// .<name>.claim): when it was claimed and, once registered, its import. A
// worker that takes a file over reads it to know whether the import
// existed.
type claimRecord struct {
	ClaimedAt time.Time `json:"claimed_at"`
	ImportID  string    `json:"import_id,omitempty"`
}

func claimRecordPath(claimed string) string {
	return filepath.Join(filepath.Dir(claimed), "."+filepath.Base(claimed)+".claim")
}

func readClaimRecord(claimed string) (claimRecord, bool) {
	var c claimRecord
	b, err := os.ReadFile(claimRecordPath(claimed))
	return c, err == nil && json.Unmarshal(b, &c) == nil
}

func writeClaimRecord(claimed string, c claimRecord) error {
	b, _ := json.Marshal(c)
	tmp := claimRecordPath(claimed) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, claimRecordPath(claimed))
}

// claim moves a file into processing/ beside it, under a name no other
// claimed file has. The rename is atomic: of two workers claiming one
// file, one wins and the other finds nothing. The claim's lease and record
// are made before the rename, so a file in processing/ always has them
// while its worker lives.
func (h *Handlers) claim(ctx context.Context, s ScheduledImport, file string) (string, error) {
	dir := filepath.Join(filepath.Dir(file), ProcessingDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dest := filepath.Join(dir, filepath.Base(file))
	if _, err := os.Lstat(dest); err == nil {
		dest = filepath.Join(dir, uniqueName(filepath.Base(file)))
	}
	if ok, err := h.splits.Claim(ctx, dest, h.owner, s.ClaimTimeout); err != nil || !ok {
		if err == nil {
			err = fs.ErrNotExist
		}
		return "", err
	}
	if err := writeClaimRecord(dest, claimRecord{ClaimedAt: time.Now().UTC()}); err != nil {
		return "", err
	}
	if err := os.Rename(file, dest); err != nil {
		os.Remove(claimRecordPath(dest))
		return "", errors.Join(err, h.splits.Unclaim(ctx, dest, h.owner))
	}
	if s.ReadyMarker != "" {
		os.Remove(file + s.ReadyMarker)
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
func (h *Handlers) sweepProcessing(ctx context.Context, s ScheduledImport, inboxDir string) {
	entries, err := os.ReadDir(filepath.Join(inboxDir, ProcessingDir))
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		claimed := filepath.Join(inboxDir, ProcessingDir, e.Name())
		if held, err := h.splits.Claimed(ctx, claimed); err != nil || held {
			continue
		}
		rec, _ := readClaimRecord(claimed)
		if rec.ImportID != "" {
			imp, err := h.store.Import(ctx, rec.ImportID)
			switch {
			case err == nil && imp.Finished():
				imp.SourcePath = claimed
				h.fileDone(ctx, imp, "")
				continue
			case err == nil && imp.Stopped != "":
				h.resumeStopped(ctx, s, imp)
				continue
			case err == nil:
				continue // under way
			case !errors.Is(err, importer.ErrImportNotFound):
				continue // Redis trouble: look again at the next firing
			}
		} else if time.Since(rec.ClaimedAt) < s.ClaimTimeout {
			continue
		}
		if ok, err := h.splits.Claim(ctx, claimed, h.owner, s.ClaimTimeout); err != nil || !ok {
			continue
		}
		h.log.WarnContext(ctx, "taking over a claimed file whose worker stopped", "schedule", s.Name, "file", claimed, "import_id", rec.ImportID)
		var lost *claimRecord
		if rec.ImportID != "" {
			lost = &rec // registered, then lost with Redis's data
		}
		h.importClaimed(ctx, s, claimed, lost)
	}
}

// resumeStopped sends the rows of a scheduled import that stopped (the API
// rejected the credentials) again, at the next firing.
func (h *Handlers) resumeStopped(ctx context.Context, s ScheduledImport, imp importer.Import) {
	if err := h.splits.Resume(ctx, imp.ID); err != nil {
		h.log.ErrorContext(ctx, "cannot resume a stopped import", "schedule", s.Name, "import_id", imp.ID, "error", err)
		return
	}
	if err := resumeRound(ctx, h.queue, h.splits, imp); err != nil {
		h.log.ErrorContext(ctx, "cannot resume a stopped import", "schedule", s.Name, "import_id", imp.ID, "error", err)
		return
	}
	h.log.InfoContext(ctx, "stopped import resumed", "schedule", s.Name, "import_id", imp.ID, "stopped", imp.Stopped)
}

// importClaimed imports a claimed file, or files it in failed/ with the
// reason; lost, when set, is the claim of an import Redis lost, recovered
// now. The claim's lease is kept while the file is read, and given up once
// the import owns the file.
func (h *Handlers) importClaimed(ctx context.Context, s ScheduledImport, claimed string, lost *claimRecord) {
	keep, stop := context.WithCancel(ctx)
	go func() {
		tick := time.NewTicker(max(s.ClaimTimeout/3, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-keep.Done():
				return
			case <-tick.C:
				if _, err := h.splits.Claim(ctx, claimed, h.owner, s.ClaimTimeout); err != nil {
					h.log.WarnContext(ctx, "cannot renew the claim of a file being read", "file", claimed, "error", err)
				}
			}
		}
	}()
	err := h.startFileImport(ctx, s, claimed, lost)
	stop()
	if uerr := h.splits.Unclaim(ctx, claimed, h.owner); uerr != nil {
		h.log.WarnContext(ctx, "cannot give up the claim of a file (it times out)", "file", claimed, "error", uerr)
	}
	if err != nil {
		h.log.ErrorContext(ctx, "scheduled import refused", "schedule", s.Name, "file", claimed, "error", err)
		if _, ferr := fileAway(claimed, FailedDir, err.Error(), ".error.txt"); ferr != nil {
			h.log.ErrorContext(ctx, "cannot file a refused file in failed/", "schedule", s.Name, "file", claimed, "error", ferr)
		}
	}
}

// fileAway moves a claimed file from processing/ to a sibling folder, under
// a name no file there has, with a note beside it (its name and suffix)
// when one is given. It returns where the file went.
func fileAway(claimed, folder, note, suffix string) (string, error) {
	dir := filepath.Join(filepath.Dir(filepath.Dir(claimed)), folder)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dest := filepath.Join(dir, filepath.Base(claimed))
	if _, err := os.Lstat(dest); err == nil {
		dest = filepath.Join(dir, uniqueName(filepath.Base(claimed)))
	}
	if err := os.Rename(claimed, dest); err != nil {
		return "", err
	}
	os.Remove(claimRecordPath(claimed))
	if note != "" {
		if err := os.WriteFile(dest+suffix, []byte(note+"\n"), 0o600); err != nil {
			return dest, fmt.Errorf("error writing the note of %s: %w", filepath.Base(dest), err)
		}
	}
	return dest, nil
}

func (h *Handlers) startFileImport(ctx context.Context, s ScheduledImport, path string, lost *claimRecord) error {
	opts, err := s.Options.Normalize()
	if err != nil {
		return err
	}
	sum, size, err := fileSHA256(path)
	if err != nil {
		return err
	}
	key := importer.ContentKey(sum, opts)
	base := filepath.Base(path)
	if lost == nil {
		if id, ok, err := h.splits.ImportByContent(ctx, key); err != nil {
			return err
		} else if ok {
			return h.alreadyImported(ctx, s, path, id)
		}
	}
	id := importer.NewImportID(base, sum, opts)
	if lost != nil {
		id = lost.ImportID
	}
	// Read the whole file once first: a broken file is refused before a
	// single row is queued.
	if err := h.scan(path, opts, s.Limits, size); err != nil {
		return err
	}
	epoch, _, err := h.splits.Epoch(ctx)
	if err != nil {
		return err
	}
	imp := importer.Import{ID: id, File: base, FileSHA256: hex.EncodeToString(sum), ContentKey: key, Options: opts, ReportSubdir: s.ReportSubdir,
		CreatedAt: time.Now().UTC(), Total: -1, SourcePath: path, SourceSize: size, Retention: s.Retention, Epoch: epoch}
	if lost != nil {
		imp.Recovery = &importer.Recovery{FirstStartedAt: lost.ClaimedAt, LookupFrom: time.Now().Add(importer.DefaultRecoveryWait).UTC()}
	}
	stored, created, err := h.splits.CreateImport(ctx, imp)
	if err != nil {
		return err
	}
	rec, _ := readClaimRecord(path)
	rec.ImportID = stored.ID
	if err := writeClaimRecord(path, rec); err != nil {
		return err
	}
	if !created && stored.SourcePath != path {
		return h.alreadyImported(ctx, s, path, stored.ID)
	}
	if !created && stored.Finished() {
		stored.SourcePath = path
		h.fileDone(ctx, stored, "")
		return nil
	}
	rows, closer, err := h.cfg.Open(path, opts, s.Limits, size)
	if err != nil {
		return err
	}
	defer closer.Close()
	res, err := Split(ctx, h.queue, h.splits, stored, rows)
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "scheduled import started", "schedule", s.Name, "import_id", stored.ID, "file", base, "rows", res.Total, "recovered", imp.Recovery != nil)
	return nil
}

// alreadyImported files a copy of a file whose content is already an
// import's, beside a note that names it: nothing of it is sent again.
func (h *Handlers) alreadyImported(ctx context.Context, s ScheduledImport, path, id string) error {
	imp, err := h.store.Import(ctx, id)
	if err != nil {
		return err
	}
	state := imp.State()
	note := fmt.Sprintf("the same content as import %s (%s, started %s from %s); nothing was sent again", id, state, imp.CreatedAt.Format(time.RFC3339), imp.File)
	dest, err := fileAway(path, DoneDir, note, ".note.txt")
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "scheduled file already imported", "schedule", s.Name, "import_id", id, "file", dest, "state", state)
	return nil
}

func (h *Handlers) scan(path string, opts importer.Options, limits importer.Limits, size int64) error {
	rows, closer, err := h.cfg.Open(path, opts, limits, size)
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
	if err := rows.CheckColumns(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if info, err := os.Stat(path); err == nil && info.Size() != size {
		return fmt.Errorf("%s: the file changed while it was read (%d bytes, then %d): it is still being written; drop it again once it is complete", filepath.Base(path), size, info.Size())
	}
	return nil
}

func fileSHA256(path string) (sum []byte, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return nil, 0, err
	}
	return h.Sum(nil), size, nil
}

// fileDone moves a scheduled import's file to done/ (every row succeeded)
// or failed/, once its report is written (into reportDir, when known). A
// file that grew after it was read goes to failed/: its later rows were
// never read.
func (h *Handlers) fileDone(ctx context.Context, imp importer.Import, reportDir string) {
	if imp.SourcePath == "" || h.splits == nil {
		return
	}
	p, err := h.splits.Progress(ctx, imp.ID)
	if err != nil {
		return
	}
	where := "'importer report " + imp.ID + "' writes it"
	if reportDir != "" {
		where = "it is in " + reportDir
	}
	folder, note := FailedDir, fmt.Sprintf("import %s: %d of %d rows succeeded; the report says why the others did not (%s)", imp.ID, p.Counts[importer.Succeeded], p.Total, where)
	if p.Counts[importer.Succeeded] == p.Total {
		folder, note = DoneDir, ""
	}
	if info, err := os.Stat(imp.SourcePath); err == nil && imp.SourceSize > 0 && info.Size() != imp.SourceSize {
		folder = FailedDir
		note = fmt.Sprintf("the file grew after it was read (%d bytes, now %d): what was added was not imported, and its last record may have been cut short; import %s holds the rest (its report: %s)",
			imp.SourceSize, info.Size(), imp.ID, where)
	}
	if dest, err := fileAway(imp.SourcePath, folder, note, ".error.txt"); err == nil {
		h.log.InfoContext(ctx, "scheduled file filed", "import_id", imp.ID, "file", dest)
	} else if !errors.Is(err, fs.ErrNotExist) {
		h.log.WarnContext(ctx, "cannot file the imported file", "import_id", imp.ID, "file", imp.SourcePath, "error", err)
	}
}
