package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DelimiterRune is the character that separates a CSV file's fields.
func (o Options) DelimiterRune() rune {
	if r := []rune(o.Delimiter); len(r) == 1 {
		return r[0]
	}
	return ','
}

// DefaultRetention is how long an import's rows (personal data) stay in
// Redis once its report is written.
const DefaultRetention = 7 * 24 * time.Hour

// DefaultDeadline is how long an import follows a write that stays PENDING
// before it gives the row up as timed_out.
const DefaultDeadline = 24 * time.Hour

// Options are the choices that shape an import. Two runs of the same file
// with the same options of what is written (see Writes) are the same
// import; the options of how it is followed (Deadline, Verify) may change
// from one run to the next.
type Options struct {
	// Format is the input format: csv, json, ndjson or xlsx.
	Format string `json:"format"`
	// Sheet is the sheet of an Excel workbook to read; empty is the
	// first.
	Sheet string `json:"sheet,omitempty"`
	// Delimiter separates a CSV file's fields: one character; empty is a
	// comma.
	Delimiter string `json:"delimiter,omitempty"`
	// Vendor picks the create path and the rules rows must meet.
	Vendor Vendor `json:"vendor"`
	// IntegrationID, PropertyID, RentPeriod and RentDueDay fill rows that
	// leave those fields empty.
	IntegrationID string `json:"integration_id,omitempty"`
	PropertyID    string `json:"property_id,omitempty"`
	RentPeriod    string `json:"rent_period,omitempty"`
	RentDueDay    int    `json:"rent_due_day,omitempty"`
	// Deadline is how long a PENDING write is followed; zero means
	// DefaultDeadline.
	Deadline time.Duration `json:"deadline"`
	// Verify reads every created record back and fails the row when the
	// record is missing.
	Verify bool `json:"verify,omitempty"`
	// Mode says what is done with rows that match existing residents;
	// MatchOn, the keys they are matched on, normalized (see
	// ParseMatchOn). A create-only import has no MatchOn.
	Mode    Mode   `json:"mode,omitempty"`
	MatchOn string `json:"match_on,omitempty"`
	// BlankClears: an empty cell of a sync's row clears the resident's
	// value where the API's update can clear it (an empty string; see
	// Sync.Blanks); without it an empty cell erases nothing.
	BlankClears bool `json:"blank_clears,omitempty"`
	// StaleAfter is how long a listed resident may go unseen by the API's
	// syncs before a sync takes it as gone from the PMS: no match, and
	// not missing from the file. Zero is DefaultStaleAfter; StaleNever
	// (negative) takes none as gone.
	StaleAfter time.Duration `json:"stale_after,omitempty"`
	// MaxCreates and MaxUpdates refuse a sync whose plan writes more rows
	// than they allow, before anything is written.
	MaxCreates Guard `json:"max_creates,omitzero"`
	MaxUpdates Guard `json:"max_updates,omitzero"`
	// Mapping, when set, is the saved column mapping the file is read
	// with. Its content is part of what is written, so of the import's id.
	Mapping *Mapping `json:"mapping,omitempty"`
	// Priority weights the import's share of the API budget while other
	// imports run: high, normal (empty) or low. How it is followed, not
	// what it writes.
	Priority Priority `json:"priority,omitempty"`
}

// DefaultStaleAfter is Propexo's advice: a record not seen for 30 days is
// to be treated as deleted (the cache never deletes one).
const DefaultStaleAfter = 30 * 24 * time.Hour

// StaleNever is the StaleAfter of an import that takes no resident as gone.
const StaleNever time.Duration = -1

// StaleAfterOrDefault is StaleAfter with its default filled: 0 for never.
func (o Options) StaleAfterOrDefault() time.Duration {
	switch {
	case o.StaleAfter == 0:
		return DefaultStaleAfter
	case o.StaleAfter < 0:
		return 0
	}
	return o.StaleAfter
}

// ParseStaleAfter reads --stale-after: a number of days (30d), a Go
// duration (720h), or "never".
func ParseStaleAfter(s string) (time.Duration, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "", "30d":
		return 0, nil
	case "never", "0", "0d":
		return StaleNever, nil
	}
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, fmt.Errorf("%q: use a number of days (30d), a duration (720h), or never", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return 0, fmt.Errorf("%q: use a number of days (30d), a duration (720h), or never", s)
		}
	}
	if d == DefaultStaleAfter {
		return 0, nil
	}
	return d, nil
}

// Priority weights an import's share of the API budget against the other
// imports running at the same time.
type Priority string

// The priorities. Normal is the empty value.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = ""
	PriorityLow    Priority = "low"
)

// ParsePriority reads a priority: high, normal (or empty) or low.
func ParsePriority(s string) (Priority, error) {
	switch p := Priority(strings.ToLower(strings.TrimSpace(s))); p {
	case PriorityHigh, PriorityLow, PriorityNormal:
		return p, nil
	case "normal":
		return PriorityNormal, nil
	}
	return "", fmt.Errorf("%q: use high, normal or low", s)
}

// Weight is the priority's share of the budget against a normal import's 2:
// high 4, low 1.
func (p Priority) Weight() int {
	switch p {
	case PriorityHigh:
		return 4
	case PriorityLow:
		return 1
	}
	return 2
}

// OptionError says which option of an import is wrong, by its field name
// (rent_period, delimiter...): the command line and the schedule file each
// name it their own way.
type OptionError struct {
	Field string
	Err   error
}

func (e *OptionError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// Normalize fills the defaults and puts values in the API's spelling, so that
// equal choices give equal import ids. It returns the first bad option, as
// an *OptionError.
func (o Options) Normalize() (Options, error) {
	vendor, err := ParseVendor(string(o.Vendor))
	if err != nil {
		return o, &OptionError{Field: "vendor", Err: err}
	}
	o.Vendor = vendor
	if o.Mapping != nil {
		m, err := o.Mapping.Normalize()
		if err != nil {
			return o, &OptionError{Field: "mapping", Err: err}
		}
		o.Mapping = &m
	}
	o.Format = strings.ToLower(strings.TrimSpace(o.Format))
	switch strings.ToLower(o.Delimiter) {
	case ",":
		o.Delimiter = ""
	case `\t`, "tab":
		o.Delimiter = "\t"
	}
	if r := []rune(o.Delimiter); len(r) > 1 || len(r) == 1 && strings.ContainsRune("\"\r\n\ufffd", r[0]) {
		return o, &OptionError{Field: "delimiter", Err: fmt.Errorf("%q: use one character, such as ; or | or tab", o.Delimiter)}
	}
	o.IntegrationID = strings.TrimSpace(o.IntegrationID)
	o.PropertyID = strings.TrimSpace(o.PropertyID)
	if o.RentPeriod != "" {
		p, err := ParseRentPeriod(o.RentPeriod)
		if err != nil {
			return o, &OptionError{Field: "rent_period", Err: err}
		}
		o.RentPeriod = p
	}
	if o.RentDueDay != 0 && (o.RentDueDay < 1 || o.RentDueDay > 31) {
		return o, &OptionError{Field: "rent_due_day", Err: fmt.Errorf("%d is not a day of the month (1-31)", o.RentDueDay)}
	}
	if o.Deadline < 0 {
		return o, &OptionError{Field: "deadline", Err: fmt.Errorf("%v is negative", o.Deadline)}
	}
	if o.Deadline == 0 {
		o.Deadline = DefaultDeadline
	}
	if o.Priority, err = ParsePriority(string(o.Priority)); err != nil {
		return o, &OptionError{Field: "priority", Err: err}
	}
	if o.Mode, err = ParseMode(string(o.Mode)); err != nil {
		return o, &OptionError{Field: "mode", Err: err}
	}
	if o.StaleAfter == DefaultStaleAfter {
		o.StaleAfter = 0
	} else if o.StaleAfter < 0 {
		o.StaleAfter = StaleNever
	}
	if !o.Mode.Matches() {
		o.MatchOn, o.BlankClears, o.StaleAfter = "", false, 0
	} else if o.MatchOn, err = ParseMatchOn(o.MatchOn); err != nil {
		return o, &OptionError{Field: "match_on", Err: err}
	}
	return o, nil
}

// Import is one bulk file processed once, as the state store keeps it.
type Import struct {
	ID   string `json:"id"`
	File string `json:"file"`
	// FileSHA256 is the hex SHA-256 of the file's content, so that an
	// --import-id given twice cannot mix two files.
	FileSHA256 string `json:"file_sha256"`
	// ContentKey names the content and options (see ContentKey): the
	// store finds an import by it.
	ContentKey string  `json:"content_key,omitempty"`
	Options    Options `json:"options"`
	// ReportDir is the absolute folder that the client that started the
	// import ('importer run') writes its report to, in a folder named
	// after the import. Workers write into their own folder instead.
	ReportDir string `json:"report_dir"`
	// ReportSubdir is the subfolder, inside the workers' own report
	// folder, that a scheduled import's report goes to.
	ReportSubdir string    `json:"report_subdir,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	// Total is the number of records in the file, or -1 while the file is
	// still being split into tasks.
	Total int `json:"total"`
	// Columns are the file's column names in order of first appearance;
	// UnknownColumns are those that map to no API field; IgnoredColumns,
	// those that are not the file's own (the row, error_code and error
	// that a failed.csv run again ends with).
	// NotTakenColumns map to a field the vendor's create does not take:
	// never sent, reported.
	Columns         []string `json:"columns,omitempty"`
	UnknownColumns  []string `json:"unknown_columns,omitempty"`
	IgnoredColumns  []string `json:"ignored_columns,omitempty"`
	NotTakenColumns []string `json:"not_taken_columns,omitempty"`
	// Stopped, when not empty, says why the import stopped sending rows
	// (the API rejected the credentials). Running it again resumes it.
	Stopped string `json:"stopped,omitempty"`
	// FinishedAt is when the report was written; zero while running.
	FinishedAt time.Time `json:"finished_at,omitempty"`
	// Retention is how long the rows stay in Redis once the report is
	// written; ExpiresAt, when they go (zero while the import runs).
	Retention time.Duration `json:"retention,omitempty"`
	ExpiresAt time.Time     `json:"expires_at,omitzero"`
	// RetryTransient, when set (a schedule's retry_transient), is how long
	// after a round ends with rows a retry can mend (the PMS was down or
	// in maintenance) they are tried again by themselves, for at most
	// MaxTransientRetries rounds.
	RetryTransient time.Duration `json:"retry_transient,omitempty"`
	// SourcePath is the claimed file of a scheduled import, moved to done/
	// or failed/ when the import ends; empty for 'importer run'.
	// SourceSize is its size when it was read: a file that grew after
	// that is filed in failed/, its later rows unread.
	SourcePath string `json:"source_path,omitempty"`
	SourceSize int64  `json:"source_size,omitempty"`
	// CancelledAt is when the import was cancelled; zero if it was not.
	CancelledAt time.Time `json:"cancelled_at,omitzero"`
	// ApprovedAt is when an operator approved the import's plan past its
	// guards (importer approve); zero if nobody did.
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	// Round counts the times a finished import was opened again (a late
	// webhook, a retry): each round writes its report once.
	Round int `json:"round,omitempty"`
	// RoundStartedAt is when 'importer retry' opened the current round;
	// zero before any.
	RoundStartedAt time.Time `json:"round_started_at,omitzero"`
	// RosterAsOf is when the import's roster was written: its file's
	// modification time (zero when not known: read from standard input).
	// The ledger keeps it beside every resident the import writes, so
	// that an older roster never overwrites them (Superseded). A content
	// seen before is not taken as old: an export can come back to an
	// earlier night's values.
	RosterAsOf time.Time `json:"roster_as_of,omitzero"`
	// Epoch is the life of Redis the import was made in: an import whose
	// receipt names an epoch Redis no longer has was lost with Redis's
	// data.
	Epoch string `json:"epoch,omitempty"`
	// Recovery, when set, says that the import's state was lost while it
	// ran and that it was started again from its file.
	Recovery *Recovery `json:"recovery,omitempty"`
	// Schedule names the schedule that started the import; empty for
	// 'importer run'.
	Schedule string `json:"schedule,omitempty"`
	// Notify are the targets told about the import's events (run's
	// --notify, a schedule's notify:).
	Notify []NotifyTarget `json:"notify,omitempty"`
}

// Recovery describes an import started again after its state was lost
// (Redis restarted without persistence, or flushed): any of its rows may
// have been sent before the loss, so each is looked up in the API before it
// is sent, and adopted when its resident exists. The lookups wait until
// writes sent before the loss have had time to resolve.
type Recovery struct {
	// FirstStartedAt is when the lost import was started.
	FirstStartedAt time.Time `json:"first_started_at"`
	// LostEpoch is the life of Redis that lost it, when known.
	LostEpoch string `json:"lost_epoch,omitempty"`
	// LookupFrom is the earliest time a row is looked up.
	LookupFrom time.Time `json:"lookup_from"`
}

// DefaultPollInitial is the delay before a write's first status check,
// before anything is learned about how long writes take.
const DefaultPollInitial = 2 * time.Second

// DefaultPollMax caps the delay between two status checks of one write.
const DefaultPollMax = 5 * time.Minute

// DefaultMaxRetry is how often a request is retried after a 5xx or a
// network error before its row fails; waits for a rate limit do not count.
const DefaultMaxRetry = 10

// DefaultRecoveryWait is how long a recovered import waits before its
// first lookups: writes sent just before the loss resolve in that time.
const DefaultRecoveryWait = time.Minute

// Deadline is Options.Deadline past the start of the import, or of the
// retry round that sent its writes. Each write is followed for
// Options.Deadline after it is sent, so a write sent late is followed as
// long as any other; this moment stands in where the send is not known.
func (imp Import) Deadline() time.Time {
	start := imp.CreatedAt
	if imp.RoundStartedAt.After(start) {
		start = imp.RoundStartedAt
	}
	return start.Add(imp.Options.Deadline)
}

// State names where the import stands: running, stopped, cancelling,
// cancelled or finished.
func (imp Import) State() string {
	switch {
	case imp.Finished() && !imp.CancelledAt.IsZero():
		return "cancelled"
	case imp.Finished():
		return "finished"
	case !imp.CancelledAt.IsZero():
		return "cancelling"
	case imp.Stopped != "":
		return "stopped"
	}
	return "running"
}

// Finished reports whether the import's report has been written.
func (imp Import) Finished() bool { return !imp.FinishedAt.IsZero() }

var (
	idChars    = regexp.MustCompile(`[^a-z0-9]+`)
	validIDPat = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
)

// NewImportID derives an import's id from the file's name, the SHA-256 of its
// content and the options: readable ("residents-1a2b3c4d5e6f") and the same
// for the same file and choices, wherever it is run.
func NewImportID(file string, contentSHA256 []byte, opts Options) string {
	base := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	base = strings.Trim(idChars.ReplaceAllString(strings.ToLower(base), "-"), "-")
	if len(base) > 40 {
		base = strings.TrimRight(base[:40], "-")
	}
	if base == "" {
		base = "import"
	}
	return base + "-" + ContentKey(contentSHA256, opts)[:12]
}

// ContentKey names what an import writes: the file's content and the
// options of what is written (Writes), whatever the file is called or
// wherever it comes from, and however it is followed. Two files with one
// content key are one import.
func ContentKey(contentSHA256 []byte, opts Options) string {
	h := sha256.New()
	h.Write(contentSHA256)
	b, _ := json.Marshal(opts.Writes()) // plain data cannot fail
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// SameWrites reports whether two imports' options write the same: their
// Writes, compared by value (a mapping is a pointer: two loads of one
// mapping file are the same mapping).
func SameWrites(a, b Options) bool {
	ja, _ := json.Marshal(a.Writes()) // plain data cannot fail
	jb, _ := json.Marshal(b.Writes())
	return string(ja) == string(jb)
}

// Writes returns the options that change what is written — the format the
// file is read in, the vendor, the field defaults, the mode and match keys —
// with those that only change how the import is followed (Deadline, Verify)
// or whether it may write (the guards) left out.
func (o Options) Writes() Options {
	o.Deadline, o.Verify, o.Priority = 0, false, PriorityNormal
	o.MaxCreates, o.MaxUpdates = Guard{}, Guard{}
	if o.Mapping != nil {
		m := *o.Mapping
		m.Name = "" // what it says counts, not what its file is called
		o.Mapping = &m
	}
	return o
}

// MaxTransientRetries bounds the rounds an import's transient failures are
// retried by themselves (RetryTransient).
const MaxTransientRetries = 3

// ValidateImportID checks an id given with --import-id.
func ValidateImportID(id string) error {
	if !validIDPat.MatchString(id) {
		return errors.New("--import-id: use 1 to 100 letters, digits, dots, dashes or underscores, starting with a letter or digit")
	}
	return nil
}

// FileColumns are the columns of an import's file, once it is read: as
// Import's Columns, UnknownColumns and IgnoredColumns.
type FileColumns struct {
	Names, Unknown, Ignored, NotTaken []string
}

// Progress is how far an import has come.
type Progress struct {
	// Total is the number of records, or -1 while the file is being split.
	Total int `json:"total"`
	// Resolved is the number of rows that have an outcome.
	Resolved int `json:"resolved"`
	// Counts holds the resolved rows by outcome.
	Counts map[Outcome]int `json:"counts"`
}

// Done reports whether every row has an outcome.
func (p Progress) Done() bool { return p.Total >= 0 && p.Resolved >= p.Total }
