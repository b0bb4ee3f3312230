// Package report writes an import's report: results.csv (one line per input
// record, in input order, with its outcome and original columns), failed.csv
// (the rows that are safe to fix and send again, original columns only: see
// importer.RowResult.SafeToResend) and
// summary.json. Files are written through temporary files and renamed into
// place, readable by their owner only: they hold personal data.
package report

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gocarina/gocsv"

	"github.com/propexo-importer/importer/importer"
)

// The report's file names.
const (
	ResultsFile = "results.csv"
	FailedFile  = "failed.csv"
	SummaryFile = "summary.json"
	// MissingFile lists, for a sync, the residents of its scope that the
	// file no longer has (report only: the API deletes no resident).
	MissingFile = "missing.csv"
)

// ResultColumns are the columns results.csv puts before the record's own.
var ResultColumns = []string{"row", "status", "action", "job_id", "record_id", "error_code", "error"}

// Dir is the folder of an import's report.
func Dir(reportDir, importID string) string { return filepath.Join(reportDir, importID) }

// MissingColumns are missing.csv's columns.
var MissingColumns = []string{"record_id", "x_id", "integration_id", "property_id", "first_name", "last_name", "email_1", "phone_1", "date_of_birth"}

// Write writes the report of an import into reportDir/<import id>/ and
// returns that folder. rows must yield every row of the import in order.
// missing, when not nil (a sync), is written as missing.csv.
func Write(reportDir string, sum importer.Summary, columns []string, rows iter.Seq2[importer.ReportRow, error], missing []importer.ResidentRecord) (string, error) {
	dir := Dir(reportDir, sum.ImportID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("error creating the report folder: %w", err)
	}
	results, err := newCSVFile(dir, ResultsFile, append(append([]string{}, ResultColumns...), columns...))
	if err != nil {
		return "", err
	}
	defer results.abort()
	failed, err := newCSVFile(dir, FailedFile, failedHeader(columns))
	if err != nil {
		return "", err
	}
	defer failed.abort()

	lines := newLiner(columns)
	for row, err := range rows {
		if err != nil {
			return "", err
		}
		if err := results.write(lines.result(row)); err != nil {
			return "", err
		}
		if row.Result.SafeToResend() {
			if err := failed.write(lines.failed(row)); err != nil {
				return "", err
			}
		}
	}
	if err := results.commit(); err != nil {
		return "", err
	}
	if err := failed.commit(); err != nil {
		return "", err
	}
	if missing != nil {
		if err := writeMissing(dir, missing); err != nil {
			return "", err
		}
	}
	if err := writeSummary(dir, sum); err != nil {
		return "", err
	}
	return dir, nil
}

func writeMissing(dir string, missing []importer.ResidentRecord) error {
	f, err := newCSVFile(dir, MissingFile, MissingColumns)
	if err != nil {
		return err
	}
	defer f.abort()
	for _, rec := range missing {
		line := []string{Neutralize(rec.ID)}
		for _, field := range MissingColumns[1:] {
			line = append(line, Neutralize(rec.Get(field)))
		}
		if err := f.write(line); err != nil {
			return err
		}
	}
	return f.commit()
}

// liner lays a row out as the report's lines.
type liner struct {
	index map[string]int
	buf   []string
}

func newLiner(columns []string) *liner {
	l := &liner{index: make(map[string]int, len(columns)), buf: make([]string, len(columns))}
	for i, c := range columns {
		l.index[c] = i
	}
	return l
}

// original is the row's values in the report's column order.
func (l *liner) original(row importer.ReportRow) []string {
	clear(l.buf)
	for _, c := range row.Columns {
		if i, ok := l.index[c.Name]; ok {
			l.buf[i] = c.Value
		}
	}
	return l.buf
}

// failed is the row's line of failed.csv: its values, then the row
// number, error code and error (see failedHeader).
func (l *liner) failed(row importer.ReportRow) []string {
	r := row.Result
	return append(l.original(row), strconv.Itoa(r.Row), r.ErrorCode, r.Error)
}

// failedHeader is failed.csv's header, Data Loader's way: the original
// columns, then row, error_code and error at the end, so the file can be
// fixed and run again as it is (the reader leaves those three out).
func failedHeader(columns []string) []string {
	return append(append([]string{}, columns...), importer.FailedColumns...)
}

// result is the row's line of results.csv.
func (l *liner) result(row importer.ReportRow) []string {
	r := row.Result
	status := string(r.Outcome)
	if status == "" {
		status = "pending"
	}
	return append([]string{strconv.Itoa(r.Row), status, string(importer.ActionOf(r, row.Planned != nil && !row.Planned.Create)), r.JobID, r.RecordID, r.ErrorCode, r.Error}, l.original(row)...)
}

// WriteResults streams results.csv to w.
func WriteResults(w io.Writer, columns []string, rows iter.Seq2[importer.ReportRow, error]) error {
	return stream(w, append(append([]string{}, ResultColumns...), columns...), columns, rows, func(l *liner, row importer.ReportRow) []string {
		return l.result(row)
	})
}

// WriteFailed streams failed.csv to w.
func WriteFailed(w io.Writer, columns []string, rows iter.Seq2[importer.ReportRow, error]) error {
	return stream(w, failedHeader(columns), columns, rows, func(l *liner, row importer.ReportRow) []string {
		if !row.Result.SafeToResend() {
			return nil
		}
		return l.failed(row)
	})
}

func stream(w io.Writer, header, columns []string, rows iter.Seq2[importer.ReportRow, error], line func(*liner, importer.ReportRow) []string) error {
	enc := &encoder{w: gocsv.NewSafeCSVWriter(csv.NewWriter(w))}
	if err := enc.write(header); err != nil {
		return err
	}
	l := newLiner(columns)
	for row, err := range rows {
		if err != nil {
			return err
		}
		if record := line(l, row); record != nil {
			if err := enc.write(record); err != nil {
				return err
			}
		}
	}
	enc.w.Flush()
	return enc.w.Error()
}

// encoder writes CSV records with every cell neutralised.
type encoder struct {
	w *gocsv.SafeCSVWriter
}

func (e *encoder) write(record []string) error {
	safe := make([]string, len(record))
	for i, v := range record {
		safe[i] = Neutralize(v)
	}
	return e.w.Write(safe)
}

// WriteSummary writes summary.json to w.
func WriteSummary(w io.Writer, sum importer.Summary) error {
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("error encoding %s: %w", SummaryFile, err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// csvFile is a CSV file written to a temporary name and renamed on commit.
type csvFile struct {
	f    *os.File
	enc  *encoder
	path string
	done bool
}

func newCSVFile(dir, name string, header []string) (*csvFile, error) {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return nil, fmt.Errorf("error creating %s: %w", name, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("error creating %s: %w", name, err)
	}
	c := &csvFile{f: f, enc: &encoder{w: gocsv.NewSafeCSVWriter(csv.NewWriter(f))}, path: filepath.Join(dir, name)}
	if err := c.write(header); err != nil {
		c.abort()
		return nil, err
	}
	return c, nil
}

func (c *csvFile) write(record []string) error {
	if err := c.enc.write(record); err != nil {
		return fmt.Errorf("error writing %s: %w", filepath.Base(c.path), err)
	}
	return nil
}

func (c *csvFile) commit() error {
	c.enc.w.Flush()
	err := errors.Join(c.enc.w.Error(), c.f.Sync(), c.f.Close())
	if err == nil {
		err = os.Rename(c.f.Name(), c.path)
	}
	c.done = true
	if err != nil {
		os.Remove(c.f.Name())
		return fmt.Errorf("error writing %s: %w", filepath.Base(c.path), err)
	}
	return nil
}

func (c *csvFile) abort() {
	if !c.done {
		c.f.Close()
		os.Remove(c.f.Name())
		c.done = true
	}
}

func writeSummary(dir string, sum importer.Summary) error {
	return WriteAtomically(dir, SummaryFile, func(w io.Writer) error { return WriteSummary(w, sum) })
}

// WriteAtomically writes a file of dir through a temporary file renamed
// into place, readable by its owner only.
func WriteAtomically(dir, name string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("error creating %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	err = write(tmp)
	err = errors.Join(err, tmp.Chmod(0o600), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		return fmt.Errorf("error writing %s: %w", name, err)
	}
	return nil
}

// Neutralize makes a cell that a spreadsheet would run as a formula inert, by
// putting an apostrophe before it. The importer's CSV reader takes such an
// apostrophe off again, so failed.csv can be sent again as it is.
func Neutralize(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + v
	}
	return v
}

// Files streams an import's report files, for downloads.
type Files struct{}

// ContentType is the media type of a report file, "" for a name that is
// not one.
func (Files) ContentType(name string) string {
	switch name {
	case ResultsFile, FailedFile:
		return "text/csv; charset=utf-8"
	case SummaryFile:
		return "application/json"
	}
	return ""
}

// Stream writes the report file named to w.
func (Files) Stream(w io.Writer, name string, imp importer.Import, sum importer.Summary, rows iter.Seq2[importer.ReportRow, error]) error {
	switch name {
	case ResultsFile:
		return WriteResults(w, imp.Columns, rows)
	case FailedFile:
		return WriteFailed(w, imp.Columns, rows)
	case SummaryFile:
		return WriteSummary(w, sum)
	}
	return fmt.Errorf("%s is not a report file", name)
}

// PlanFile is what 'importer plan' writes: what a sync would do with each
// row.
const PlanFile = "plan.csv"

// PlanColumns are plan.csv's columns.
var PlanColumns = []string{"row", "action", "status", "record_id", "changes", "note"}

// Plan writes plan.csv, a row at a time, into an import's report folder.
type Plan struct {
	dir string
	f   *csvFile
}

// NewPlan starts reportDir/<import id>/plan.csv.
func NewPlan(reportDir, importID string) (*Plan, error) {
	dir := Dir(reportDir, importID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("error creating the report folder: %w", err)
	}
	f, err := newCSVFile(dir, PlanFile, PlanColumns)
	if err != nil {
		return nil, err
	}
	return &Plan{dir: dir, f: f}, nil
}

// Add writes a row's decision: the changed fields as "field: old → new".
func (p *Plan) Add(row int, d importer.Decision) error {
	changes := make([]string, len(d.Changes))
	for i, c := range d.Changes {
		changes[i] = fmt.Sprintf("%s: %s → %s", c.Field, orDash(c.Old), orDash(c.New))
	}
	status := string(d.Outcome)
	if status == "" {
		status = "to_" + string(d.Action)
	}
	return p.f.write([]string{strconv.Itoa(row), string(d.Action), status, Neutralize(d.RecordID),
		Neutralize(strings.Join(changes, "; ")), Neutralize(d.Note)})
}

func orDash(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

// Commit finishes plan.csv and returns its path; Abort drops it.
func (p *Plan) Commit() (string, error) {
	if err := p.f.commit(); err != nil {
		return "", err
	}
	return filepath.Join(p.dir, PlanFile), nil
}

// Abort drops an unfinished plan.csv.
func (p *Plan) Abort() { p.f.abort() }
