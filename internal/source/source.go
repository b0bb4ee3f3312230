// Package source reads input files of residents as a stream of
// importer.Row: CSV (through gocsv's decoder over encoding/csv), a JSON array
// of objects, NDJSON (one object a line), and a sheet of an Excel workbook
// (through excelize). Column labels are matched to
// API fields case- and punctuation-insensitively, with common human labels
// ("First Name", "E-mail", "Zip Code"); columns that match nothing are kept
// as they are, for the report.
package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"

	"github.com/propexo-importer/importer/importer"
)

// The input formats.
const (
	FormatCSV    = "csv"
	FormatJSON   = "json"
	FormatNDJSON = "ndjson"
	FormatXLSX   = "xlsx"
)

// Formats lists the formats Open takes.
var Formats = []string{FormatCSV, FormatJSON, FormatNDJSON, FormatXLSX}

// FormatOf returns the format to read path with: flag when given, else the
// one its extension names.
func FormatOf(path, flag string) (string, error) {
	if flag != "" {
		f := strings.ToLower(strings.TrimSpace(flag))
		for _, known := range Formats {
			if f == known {
				return f, nil
			}
		}
		if f == "jsonl" {
			return FormatNDJSON, nil
		}
		return "", fmt.Errorf("--format %q: use csv, json, ndjson or xlsx", flag)
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return FormatCSV, nil
	case ".json":
		return FormatJSON, nil
	case ".ndjson", ".jsonl":
		return FormatNDJSON, nil
	case ".xlsx":
		return FormatXLSX, nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the file name; use --format csv, json, ndjson or xlsx", path)
}

// SyntaxError is a file that cannot be read any further: the place where it
// broke and why. Rows before it were read.
type SyntaxError struct {
	Line int
	Err  error
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}

func (e *SyntaxError) Unwrap() error { return e.Err }

// ErrEmpty is returned by Open for a file with no header or no content.
var ErrEmpty = errors.New("the file is empty")

// ErrBinary is returned by Open for a file that is not text.
var ErrBinary = errors.New("the file is not text (it holds NUL bytes): export it as CSV, JSON, NDJSON or an Excel workbook (.xlsx)")

// HardRecordFactor is how many times MaxRecordBytes a record may grow to
// while it is read: past it the reader stops instead of holding it.
const HardRecordFactor = 16

// hardRecordBytes is the most a record may take while it is read.
func hardRecordBytes(l importer.Limits) int64 { return int64(l.MaxRecordBytes) * HardRecordFactor }

// Options are how a file is read: its limits and, for CSV, the character
// that separates its fields.
type Options struct {
	importer.Limits
	// Delimiter separates a CSV file's fields. Default ','.
	Delimiter rune
	// Mapping, when set, maps the columns before the built-in aliases.
	Mapping *importer.Mapping
	// Sheet is the sheet of a workbook to read. Default: the first.
	Sheet string
}

// check returns why a record breaks the limits, or nil.
func checkLimits(l importer.Limits, names []string, values []string) error {
	if len(values) > l.MaxColumns {
		return fmt.Errorf("the record has %d fields; at most %d are read (--max-columns)", len(values), l.MaxColumns)
	}
	total := 0
	for i, v := range values {
		total += len(v)
		if len(v) > l.MaxFieldBytes {
			name := fmt.Sprintf("field %d", i+1)
			if i < len(names) {
				name = fmt.Sprintf("%q", names[i])
			}
			return fmt.Errorf("%s is %d bytes long; at most %d are read (--max-field-bytes)", name, len(v), l.MaxFieldBytes)
		}
	}
	if total > l.MaxRecordBytes {
		return fmt.Errorf("the record is %d bytes long; at most %d are read (--max-record-bytes)", total, l.MaxRecordBytes)
	}
	return nil
}

// Reader reads the rows of one file, in order.
type Reader struct {
	next      func() (importer.Row, error)
	cols      *columns
	n         int
	limits    importer.Limits
	delimiter rune
	ignored   []string
	// err, once set, ends the reading: the file broke a limit of the
	// whole file.
	err error
	// close, when set, frees what the format holds (a workbook's
	// temporary files).
	close func() error
}

// Close frees what reading the file holds besides the file itself (a
// workbook's temporary files); it does not close the file.
func (rd *Reader) Close() error {
	if rd.close == nil {
		return nil
	}
	err := rd.close()
	rd.close = nil
	return err
}

// Open returns a Reader of r in the given format, with importer.DefaultLimits and
// commas unless options are given. Text is UTF-8, with or without a
// byte-order mark; UTF-16 with a byte-order mark is converted. It reads no
// more than the first line before the first call to Next, but for a
// workbook, which it reads whole (a zip is read from its end).
func Open(r io.Reader, format string, options ...Options) (*Reader, error) {
	rd := &Reader{cols: newColumns(nil), limits: importer.DefaultLimits, delimiter: ','}
	if len(options) > 0 {
		rd.cols.mapping = options[0].Mapping
		rd.limits = options[0].Limits.WithDefaults()
		if options[0].Delimiter != 0 {
			rd.delimiter = options[0].Delimiter
		}
	}
	if format == FormatXLSX {
		sheet := ""
		if len(options) > 0 {
			sheet = options[0].Sheet
		}
		br := bufio.NewReader(r)
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			return nil, ErrEmpty
		}
		var err error
		if rd.next, err = rd.xlsx(br, sheet); err != nil {
			return nil, err
		}
		return rd, nil
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		_, _ = br.Discard(3) // the three bytes Peek saw
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		utf16 := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM)
		br = bufio.NewReaderSize(transform.NewReader(br, utf16.NewDecoder()), 64<<10)
	}
	if sniff, _ := br.Peek(8 << 10); bytes.IndexByte(sniff, 0) >= 0 {
		return nil, ErrBinary
	}
	var err error
	switch format {
	case FormatCSV:
		rd.next, err = rd.csv(br)
	case FormatJSON:
		rd.next, err = rd.jsonArray(br)
	case FormatNDJSON:
		rd.next, err = rd.ndjson(br)
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return nil, err
	}
	return rd, nil
}

// File is an input file opened for reading: its Reader and the file.
type File struct {
	*Reader
	f *os.File
}

// Close closes the file, and frees what reading it holds.
func (f *File) Close() error { return errors.Join(f.Reader.Close(), f.f.Close()) }

// OpenFile opens the file at path as rows, in the given format or, when
// format is empty, the one its name says, reading no more than its first
// size bytes (all of it when size is 0).
func OpenFile(path, format string, size int64, opts Options) (*File, error) {
	format, err := FormatOf(path, format)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var r io.Reader = f
	if size > 0 {
		r = io.LimitReader(f, size)
	}
	rd, err := Open(r, format, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &File{Reader: rd, f: f}, nil
}

// Next returns the next row, io.EOF after the last, or a *SyntaxError when
// the file cannot be read further. A record that is broken on its own (a
// line that is not a JSON object, a CSV record with too many fields) is not
// an error: it comes back as a Row whose Err says what is wrong with it.
func (rd *Reader) Next() (importer.Row, error) {
	if rd.err != nil {
		return importer.Row{}, rd.err
	}
	row, err := rd.next()
	if err == nil && rd.err != nil {
		err = rd.err
	}
	if err != nil {
		return importer.Row{}, err
	}
	rd.n++
	row.Number = rd.n
	return row, nil
}

// Columns returns the column names seen so far, in order of first
// appearance.
func (rd *Reader) Columns() []string { return append([]string(nil), rd.cols.names...) }

// UnknownColumns returns the columns seen so far that map to no API field.
func (rd *Reader) UnknownColumns() []string { return rd.cols.unknown() }

// CheckColumns returns why a file cannot be imported although it could be
// read: none of its columns is a resident's field. It guesses the
// separator of a CSV file read with the wrong one.
func (rd *Reader) CheckColumns() error {
	names := rd.cols.names
	for _, f := range rd.cols.fields {
		if f != "" {
			return nil
		}
	}
	if len(names) == 0 {
		return nil
	}
	quoted := make([]string, 0, 3)
	for _, n := range names[:min(len(names), 3)] {
		quoted = append(quoted, strconv.Quote(n))
	}
	seen := strings.Join(quoted, ", ")
	if len(names) > 3 {
		seen += ", ..."
	}
	if len(names) > 1 {
		seen = fmt.Sprintf("%d columns: %s", len(names), seen)
	}
	if len(names) == 1 {
		for _, d := range []rune{';', '\t', '|', ','} {
			if d != rd.delimiter && strings.ContainsRune(names[0], d) {
				return fmt.Errorf("none of its columns is a resident's field: it has one column, %s, which looks separated by %q; give --delimiter %q", seen, d, d)
			}
		}
	}
	return fmt.Errorf("none of its columns is a resident's field (it has %s); name them as the API does (first_name, email_1...) or as people do (First Name, E-mail...)", seen)
}

// IgnoredColumns returns the columns left out as not the file's own: the
// importer.FailedColumns that end a failed.csv run again.
func (rd *Reader) IgnoredColumns() []string { return append([]string(nil), rd.ignored...) }

// errRecordTooLong ends reading a file with a record longer than a reader
// may hold.
var errRecordTooLong = errors.New("record too long")

// boundedReader hands out the bytes of r, but no more than max past the
// mark that its reader sets where each record starts: a record that never
// ends (a line of gigabytes, a JSON value that never closes) stops the
// reading with errRecordTooLong instead of filling memory.
type boundedReader struct {
	r    io.Reader
	read int64 // bytes handed out
	mark int64 // where the current record starts
	max  int64
}

func (b *boundedReader) Read(p []byte) (int, error) {
	left := b.mark + b.max - b.read
	if left <= 0 {
		return 0, errRecordTooLong
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	return n, err
}

// tooLong is the error of a record past the hard limit, after line.
func (rd *Reader) tooLong(line int) error {
	return &SyntaxError{Line: line, Err: fmt.Errorf("a record is longer than %d bytes (%d times --max-record-bytes); the file cannot be read past it", hardRecordBytes(rd.limits), HardRecordFactor)}
}

// build makes a Row from values by column position.
func (rd *Reader) build(line int, positions []int, values []string) importer.Row {
	row := importer.Row{Line: line, Values: make(map[string]string, len(values)), Columns: make([]importer.Column, len(values))}
	for i, v := range values {
		pos := positions[i]
		row.Columns[i] = importer.Column{Name: rd.cols.names[pos], Value: v}
		if f := rd.cols.fields[pos]; f != "" {
			if _, taken := row.Values[f]; !taken {
				row.Values[f] = v
			}
		}
	}
	return row
}
