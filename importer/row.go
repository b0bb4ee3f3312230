package importer

import (
	"fmt"
	"strings"
	"time"
)

// Row is one record of an input file.
type Row struct {
	// Number is the record's 1-based position among the file's records.
	Number int
	// Line is the line of the file where the record starts (1-based).
	Line int
	// Values holds the record's values by API field name, for the columns
	// that map to a field of the write API.
	Values map[string]string
	// Columns holds every value of the record under its original column
	// name, in the file's order, including the columns that map to nothing.
	Columns []Column
	// Err, when not nil, says why the record could not be read (a malformed
	// line, a value that is not a JSON object). Such a row is invalid.
	Err error
}

// Column is one value of a record under the name the file gave its column.
type Column struct {
	Name  string `json:"n"`
	Value string `json:"v"`
}

// Who names the resident of a row for a person: "Ada Lovelace
// <ada@example.com>", or what of it the row has.
func (r Row) Who() string {
	name := strings.TrimSpace(r.Values[FieldFirstName] + " " + r.Values[FieldLastName])
	if name == "" {
		name = strings.TrimSpace(r.Values[FieldFullName]) // a mapping's whole-name column
	}
	email := strings.TrimSpace(r.Values[FieldEmail1])
	switch {
	case name != "" && email != "":
		return name + " <" + email + ">"
	case name != "":
		return name
	}
	return email
}

// Where names the row for a person: its record number and, when known and
// different, its line.
func (r Row) Where() string {
	if r.Line > 0 && r.Line != r.Number {
		return fmt.Sprintf("row %d (line %d)", r.Number, r.Line)
	}
	return fmt.Sprintf("row %d", r.Number)
}

// Outcome is how a row ended.
type Outcome string

// The outcomes of a row. A row has exactly one once its import is finished.
const (
	Succeeded Outcome = "succeeded"
	Partial   Outcome = "partial"
	Failed    Outcome = "failed"
	Invalid   Outcome = "invalid"
	Duplicate Outcome = "duplicate"
	TimedOut  Outcome = "timed_out"
	// Cancelled: never sent, because the import was cancelled first.
	Cancelled Outcome = "cancelled"
	// Unchanged: the row matched a resident that has its values already;
	// nothing was sent.
	Unchanged Outcome = "unchanged"
	// Conflict: the row's key matched several residents; nothing was
	// sent.
	Conflict Outcome = "conflict"
	// NotFound: an update-only import found no resident for the row.
	NotFound Outcome = "not_found"
	// Superseded: a roster written after this one wrote the row's
	// resident since: an older roster never overwrites a newer one, and
	// nothing was sent.
	Superseded Outcome = "superseded"
)

// Outcomes lists every outcome in the order reports show them: the rows
// written, then those to look at, then those never sent.
var Outcomes = []Outcome{Succeeded, Unchanged, Partial, Failed, TimedOut, Conflict, NotFound, Superseded, Invalid, Duplicate, Cancelled}

// Fine reports whether the outcome needs nobody to look at it: the row was
// written, or had nothing to write.
func (o Outcome) Fine() bool { return o == Succeeded || o == Unchanged }

// FineRows counts the rows whose outcome is Fine: the one rule for "fine"
// that a summary, a notification, a schedule's done/ or failed/ and the
// dashboard all follow.
func FineRows(counts map[Outcome]int) int {
	n := 0
	for o, c := range counts {
		if o.Fine() {
			n += c
		}
	}
	return n
}

// Label is the outcome as people read it ("timed out").
func (o Outcome) Label() string { return strings.ReplaceAll(string(o), "_", " ") }

// Valid reports whether o is one of Outcomes.
func (o Outcome) Valid() bool {
	for _, known := range Outcomes {
		if o == known {
			return true
		}
	}
	return false
}

// Error codes the importer itself gives rows, beside the API's own codes.
const (
	CodeInvalid     = "invalid"
	CodeDuplicate   = "duplicate"
	CodeWriteFailed = "write_failed"
	// CodePMSRejected: the PMS refused the write's data (a 4xx of its
	// own, a validation message): the same write would fail again, so
	// 'importer retry' leaves it; fix the row and send it again.
	CodePMSRejected  = "pms_rejected"
	CodePartial      = "partial_success"
	CodeTimedOut     = "timed_out"
	CodeInDoubt      = "in_doubt"
	CodeRecordGone   = "record_missing"
	CodeRetriesSpent = "retries_exhausted"
	CodeJobNotFound  = "job_not_found"
	CodeInternal     = "internal_error"
	CodeCancelled    = "cancelled"
	CodeConflict     = "conflict"
	CodeNotFound     = "not_found"
	CodeSuperseded   = "superseded"
)

// RowResult is the outcome of one row, as the report shows it.
type RowResult struct {
	Row     int     `json:"row"`
	Line    int     `json:"line,omitempty"`
	Outcome Outcome `json:"status"`
	// Action is what the import did with the row: create, update, or
	// none; empty for a row of an import before sync.
	Action    Action    `json:"action,omitempty"`
	JobID     string    `json:"job_id,omitempty"`
	RecordID  string    `json:"record_id,omitempty"`
	ErrorCode string    `json:"error_code,omitempty"`
	Error     string    `json:"error,omitempty"`
	At        time.Time `json:"at"`
}

// FailedColumns are the columns failed.csv adds after a row's own, Data
// Loader's way: the row's number, error code and error. A file that ends
// with them is a failed.csv run again, and a reader leaves them out.
var FailedColumns = []string{"row", "error_code", "error"}

// SafeToResend reports whether sending the row again, as it is, cannot
// create a resident twice: it was never sent (invalid), or the API refused
// it before making a write job, or the request certainly never reached the
// API. A row that ever got a job id, or whose request may have reached the
// API (in doubt, or failed for a reason the importer cannot place), is not:
// its resident may exist. failed.csv holds exactly the rows that are safe.
func (r RowResult) SafeToResend() bool {
	switch r.Outcome {
	case Invalid:
		return true
	case Failed:
		// A write the PMS refused wrote nothing (FAILURE, as the docs
		// say): fixed, it may be sent again.
		return r.ErrorCode == CodePMSRejected || r.JobID == "" && r.ErrorCode != CodeInDoubt && r.ErrorCode != CodeInternal
	}
	return false
}

// Problem is one broken rule of a row: the field and the reason.
type Problem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (p Problem) String() string {
	if p.Field == "" {
		return p.Reason
	}
	return p.Field + ": " + p.Reason
}

// JoinProblems renders problems as one line, in the order they were found.
func JoinProblems(problems []Problem) string {
	parts := make([]string, len(problems))
	for i, p := range problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// ReportRow is one line of an import's report: the row's outcome and its
// original columns. Result.Outcome is empty for a row that has none yet.
type ReportRow struct {
	Result  RowResult
	Columns []Column
	// Planned is the update a sync planned for the row; nil for a create
	// or a row that writes nothing.
	Planned *Update
}
