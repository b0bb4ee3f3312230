package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/source"
)

// Input is a file to import and how to read it.
type Input struct {
	// Path is where the file is read.
	Path string
	// Shown is how errors name the file: as the user gave it (a copy of
	// standard input is read from a private file, but named "-").
	Shown string
	// Name is the file's name in the import's record and id.
	Name string
	// Options are the import's options, normalized, with the format set.
	Options importer.Options
	// Limits bound what a record may hold.
	Limits importer.Limits
}

// Inspected is a file read once, whole: its content's hash, its size and
// its number of records. Start reads no more of it than Size.
type Inspected struct {
	Input
	Sum     []byte
	Size    int64
	Records int
	// WrittenAt is when the file was last written (its modification
	// time): a sync's roster written again after its import finished is
	// the next night's (see Start).
	WrittenAt time.Time
	// Unsent are the columns no field of a resident reads (Unknown), or
	// that the vendor does not take (NotTaken): kept in the report, never
	// sent. Run and plan name them before anything is sent.
	Unsent importer.FileColumns
	// Columns are the file's columns, in order.
	Columns []string
}

// InputError says why a file cannot be imported: it cannot be read to the
// end, holds no records, none of its columns is a resident's field, or its
// columns are not its strict mapping's.
// Nothing of it was stored or sent.
type InputError struct {
	File string
	Err  error
}

func (e *InputError) Error() string { return e.File + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Inspect reads a whole file once, as a stream, before anything of it is
// stored: its SHA-256 (the import's id and content key come from it) and a
// check that every record can be read, so that a broken file is refused
// before a single row is queued. A file that changes while it is read is
// refused too: it is still being written.
func Inspect(ctx context.Context, in Input) (Inspected, error) {
	out := Inspected{Input: in}
	f, err := os.Open(in.Path)
	if err != nil {
		return out, &InputError{File: in.Shown, Err: errors.Unwrap(err)}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return out, err
	}
	if info.IsDir() {
		return out, &InputError{File: in.Shown, Err: errors.New("a folder, not a file")}
	}
	out.WrittenAt = info.ModTime()
	hash := sha256.New()
	counted := &countingReader{r: io.TeeReader(f, hash)}
	rd, err := source.Open(counted, in.Options.Format, source.Options{Limits: in.Limits, Delimiter: in.Options.DelimiterRune(), Mapping: in.Options.Mapping, Sheet: in.Options.Sheet})
	if err != nil {
		return out, &InputError{File: in.Shown, Err: err}
	}
	defer rd.Close()
	for {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, &InputError{File: in.Shown, Err: err}
		}
		out.Records++
		if out.Records%1000 == 0 && ctx.Err() != nil {
			return out, fmt.Errorf("interrupted while reading %s; nothing was sent: %w", in.Shown, ctx.Err())
		}
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return out, &InputError{File: in.Shown, Err: err}
	}
	if out.Records == 0 {
		return out, &InputError{File: in.Shown, Err: errors.New("the file holds no records")}
	}
	if err := rd.CheckColumns(); err != nil {
		return out, &InputError{File: in.Shown, Err: err}
	}
	if err := in.Options.Mapping.CheckColumns(rd.Columns()); err != nil {
		return out, &InputError{File: in.Shown, Err: err}
	}
	out.Columns = rd.Columns()
	out.Unsent = importer.FileColumns{Unknown: rd.UnknownColumns(), NotTaken: in.Options.Vendor.NotTaken(rd.Columns(), in.Options.Mapping)}
	out.Sum, out.Size = hash.Sum(nil), counted.n
	if info, err := os.Stat(in.Path); err == nil && info.Mode().IsRegular() && info.Size() != out.Size {
		return out, &InputError{File: in.Shown, Err: fmt.Errorf("the file changed while it was read (%d bytes, then %d): it is still being written; import it once it is complete", out.Size, info.Size())}
	}
	return out, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// ID is the id the file's import gets unless one is given: its name and
// a digest of its content and of the options that change what is written.
func (in Inspected) ID() string { return importer.NewImportID(in.Name, in.Sum, in.Options) }

// StartRequest is an inspected file to import, and the import's settings.
type StartRequest struct {
	File Inspected
	// ImportID is the import's id; empty: File.ID().
	ImportID string
	// Again starts a new import of a content imported before, under an id
	// of its own (id-2, id-3...). Without it, Start refuses such a
	// content with a *ContentImportedError.
	Again bool
	// ReportDir is the folder of the client's report, as the import
	// records it (only for display: workers write their own folder).
	ReportDir string
	// ReportSubdir is the subfolder of the workers' report folder that
	// receives the report (a schedule's).
	ReportSubdir string
	// SourcePath, when set, is a file the import owns (a scheduled
	// inbox file): its finalize files it in done/ or failed/.
	SourcePath string
	// Retention is how long the rows stay in Redis after the report.
	Retention time.Duration
	// RetryTransient: see importer.Import.RetryTransient.
	RetryTransient time.Duration
	// RecoveryWait is how long a recovered import waits before it looks
	// its rows up. Default importer.DefaultRecoveryWait.
	RecoveryWait time.Duration
	// Trace is the record, kept outside Redis, of the imports started; nil
	// when nothing can have been sent before (the in-process sandbox
	// starts empty).
	Trace Trace
	// Schedule names the schedule that starts the import, if one does.
	Schedule string
	// Notify are the targets told about the import's events (their
	// addresses saved with SaveTargets).
	Notify []importer.NotifyTarget
	// Ready, when set, is called once the file is known to be an import to
	// start or resume, before anything is stored: 'importer run' checks
	// the API there and starts its workers. Its error is returned as is.
	Ready func(ctx context.Context) error
}

// Trace keeps, outside Redis, the record that an import was started: a
// receipt in the report folder (run), a claim record beside a scheduled
// file. When Redis no longer knows an import its trace knows, Redis lost
// it, and Start recovers it: each row is looked up in the API before it is
// sent, so none is created twice.
type Trace interface {
	// Started returns when the import was first started and the epoch of
	// the Redis it was started on, if it ever was.
	Started(importID string) (at time.Time, epoch string, ok bool, err error)
	// Record keeps the trace of an import now stored; created says it was
	// stored by this call.
	Record(imp importer.Import, created bool) error
	// Finished returns the summary of an import the trace saw finish,
	// if it did: Redis lost it after it finished.
	Finished(importID string) (importer.Summary, bool)
}

// LostFinishedError refuses to start again an import that Redis lost
// after it had finished: sending its file again would write it over
// whatever a newer import wrote since. Nothing was sent.
type LostFinishedError struct{ Summary importer.Summary }

func (e *LostFinishedError) Error() string {
	return fmt.Sprintf("import %s finished on %s, and Redis has lost it since; it is not sent again, so that nothing a newer import wrote is overwritten",
		e.Summary.ImportID, e.Summary.FinishedAt.Format(time.RFC3339))
}

// Started says what Start did.
type Started struct {
	Import importer.Import
	// Created: the import is new (or recovered: Import.Recovery is set).
	Created bool
	// Finished: the import had finished already; nothing was done.
	Finished bool
	// Resumed holds the reason the import had stopped, when Start resumed
	// it.
	Resumed string
	// Split counts what the file's rows are.
	Split SplitResult
}

// ContentImportedError refuses a file whose content (with the options of
// what is written) is already another import's.
type ContentImportedError struct {
	File     string
	Other    importer.Import
	Progress importer.Progress
}

func (e *ContentImportedError) Error() string {
	return fmt.Sprintf("the content of %s was imported already, as import %s (%s, started %s)", e.File, e.Other.ID, e.Other.State(), e.Other.CreatedAt.Format(time.RFC3339))
}

// IDTakenError refuses an import id that another file, or other options of
// what is written, already have.
type IDTakenError struct{ Existing importer.Import }

func (e *IDTakenError) Error() string {
	return fmt.Sprintf("import %s was started from another file or with options that change what is written (%s)", e.Existing.ID, e.Existing.File)
}

// Start imports an inspected file: the one way in for 'importer run' and for
// a schedule's inbox files. The same file with the same options is the same
// import: started again, it resumes it (a stopped one too) and sends
// nothing twice, or, finished, does nothing. The same content under another
// name is refused unless Again, while its import runs. A sync's roster is
// different: once the import of its content has finished, the roster
// written again (another night's export, the same or under another name)
// is a new import (id-2, id-3... under the same name), which sends only
// what is not in place already. An import Redis lost is recovered (see
// Trace). Otherwise the import is stored, and its rows are split and fed
// to the queue.
func (sr *Starting) Start(ctx context.Context, req StartRequest) (Started, error) {
	f := req.File
	id := req.ImportID
	if id == "" {
		id = f.ID()
	}
	var err error
	switch {
	case req.Again:
		id, err = sr.freshID(ctx, id)
	case req.ImportID == "" && f.Options.Mode.Matches():
		id, err = sr.nightOf(ctx, f, req.Trace, id)
	}
	if err != nil {
		return Started{}, err
	}
	existing, err := sr.store.Import(ctx, id)
	switch {
	case errors.Is(err, importer.ErrImportNotFound):
		if sum, done := traceFinished(req.Trace, id); done {
			return Started{}, &LostFinishedError{Summary: sum}
		}
		if !req.Again {
			if err := sr.checkContent(ctx, f); err != nil {
				return Started{}, err
			}
		}
	case err != nil:
		return Started{}, err
	case existing.FileSHA256 != hex.EncodeToString(f.Sum) || !importer.SameWrites(existing.Options, f.Options):
		return Started{}, &IDTakenError{Existing: existing}
	case existing.Finished():
		return Started{Import: existing, Finished: true}, nil
	}
	if req.Ready != nil {
		if err := req.Ready(ctx); err != nil {
			return Started{}, err
		}
	}
	imp, created, err := sr.register(ctx, req, id)
	if err != nil {
		return Started{}, err
	}
	started := Started{Import: imp, Created: created}
	if !created {
		// A re-run's choices of how the import is followed, and of where
		// its report goes, win over the first run's.
		if err := sr.store.Refollow(ctx, id, f.Options, req.ReportDir); err != nil {
			return started, err
		}
	}
	if imp.Stopped != "" {
		if err := sr.store.Resume(ctx, id); err != nil {
			return started, err
		}
		started.Resumed = imp.Stopped
	}
	if started.Import, err = sr.store.Import(ctx, id); err != nil {
		return started, err
	}
	rows, err := source.OpenFile(f.Path, f.Options.Format, f.Size, source.Options{Limits: f.Limits, Delimiter: f.Options.DelimiterRune(), Mapping: f.Options.Mapping, Sheet: f.Options.Sheet})
	if err != nil {
		return started, &InputError{File: f.Shown, Err: err}
	}
	defer rows.Close()
	started.Split, err = sr.Split(ctx, started.Import, rows)
	var syntax *source.SyntaxError
	if errors.As(err, &syntax) {
		return started, &InputError{File: f.Shown, Err: err}
	}
	if err != nil {
		return started, fmt.Errorf("error queuing the rows of %s: %w", f.Shown, err)
	}
	return started, nil
}

// checkContent refuses a content (with the options of what is written)
// that another import has: the same file under another name or id.
func (sr *Starting) checkContent(ctx context.Context, f Inspected) error {
	other, ok, err := sr.store.ImportByContent(ctx, importer.ContentKey(f.Sum, f.Options))
	if err != nil || !ok {
		return err
	}
	prev, err := sr.store.Import(ctx, other)
	if errors.Is(err, importer.ErrImportNotFound) {
		return nil // deleted since
	}
	if err != nil {
		return err
	}
	if f.Options.Mode.Matches() && prev.Finished() {
		return nil // a sync's next night, under another name
	}
	p, err := sr.store.Progress(ctx, other)
	if err != nil {
		return err
	}
	return &ContentImportedError{File: f.Shown, Other: prev, Progress: p}
}

// nightOf is the id of a sync's roster: the last import of its name and
// content (id, id-2, id-3...), to resume or to show, unless that one
// finished before the file was written again: then the roster is the next
// night's, and gets the next id.
func (sr *Starting) nightOf(ctx context.Context, f Inspected, trace Trace, id string) (string, error) {
	last := importer.Import{}
	for n := 1; ; n++ {
		try := id
		if n > 1 {
			try = fmt.Sprintf("%s-%d", id, n)
		}
		imp, err := sr.store.Import(ctx, try)
		if sum, done := traceFinished(trace, try); errors.Is(err, importer.ErrImportNotFound) && done {
			// Redis lost it after it finished: as finished then.
			imp, err = importer.Import{ID: try, FinishedAt: sum.FinishedAt}, nil
		}
		if errors.Is(err, importer.ErrImportNotFound) {
			if last.ID == "" || (last.Finished() && f.WrittenAt.After(last.FinishedAt)) {
				return try, nil
			}
			return last.ID, nil
		}
		if err != nil {
			return "", err
		}
		last = imp
	}
}

// freshID is id, or, when an import has it already, id-2, id-3...: the id
// of a new import of a content imported before.
func (sr *Starting) freshID(ctx context.Context, id string) (string, error) {
	for n := 1; ; n++ {
		try := id
		if n > 1 {
			try = fmt.Sprintf("%s-%d", id, n)
		}
		_, err := sr.store.Import(ctx, try)
		if errors.Is(err, importer.ErrImportNotFound) {
			return try, nil
		}
		if err != nil {
			return "", err
		}
	}
}

// register stores the import, or finds it stored, and keeps its trace.
// When the trace says it was started and Redis no longer has it, it is
// stored again as a recovery.
func (sr *Starting) register(ctx context.Context, req StartRequest, id string) (importer.Import, bool, error) {
	f := req.File
	epoch, _, err := sr.store.Epoch(ctx)
	if err != nil {
		return importer.Import{}, false, err
	}
	imp := importer.Import{ID: id, File: f.Name, FileSHA256: hex.EncodeToString(f.Sum), ContentKey: importer.ContentKey(f.Sum, f.Options),
		Options: f.Options, ReportDir: req.ReportDir, ReportSubdir: req.ReportSubdir, CreatedAt: time.Now().UTC(), Total: -1,
		SourcePath: req.SourcePath, Retention: req.Retention, RetryTransient: req.RetryTransient, Epoch: epoch, Schedule: req.Schedule, Notify: req.Notify,
		RosterAsOf: f.WrittenAt.UTC()}
	if req.SourcePath != "" {
		imp.SourceSize = f.Size
	}
	if req.Trace != nil {
		at, tracedEpoch, known, err := req.Trace.Started(id)
		if err != nil {
			return importer.Import{}, false, err
		}
		if known {
			if _, err := sr.store.Import(ctx, id); errors.Is(err, importer.ErrImportNotFound) {
				wait := req.RecoveryWait
				if wait <= 0 {
					wait = importer.DefaultRecoveryWait
				}
				// Writes sent before the loss show only once the
				// vendor's cache lag has passed.
				wait = max(wait, sr.cfg.CacheLag.For(string(f.Options.Vendor)))
				imp.Recovery = &importer.Recovery{FirstStartedAt: at, LookupFrom: time.Now().Add(wait).UTC()}
				if tracedEpoch != "" && tracedEpoch != epoch {
					imp.Recovery.LostEpoch = tracedEpoch
				}
			} else if err != nil {
				return importer.Import{}, false, err
			}
		}
	}
	stored, created, err := sr.store.CreateImport(ctx, imp)
	if err != nil {
		return importer.Import{}, false, err
	}
	if req.Trace != nil {
		if err := req.Trace.Record(stored, created); err != nil {
			return stored, created, err
		}
	}
	if created && stored.Recovery != nil {
		sr.log.WarnContext(ctx, "recovering an import Redis lost: each row is looked up in the API before it is sent", "import_id", id,
			"first_started_at", stored.Recovery.FirstStartedAt, "lookup_from", stored.Recovery.LookupFrom)
	}
	return stored, created, nil
}

// traceFinished reads a trace's summary of a finished import, if any.
func traceFinished(t Trace, id string) (importer.Summary, bool) {
	if t == nil {
		return importer.Summary{}, false
	}
	return t.Finished(id)
}
