package source_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/source"
)

func readAll(t testing.TB, input, format string) ([]importer.Row, *source.Reader) {
	t.Helper()
	rd, err := source.Open(strings.NewReader(input), format)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var rows []importer.Row
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rows, rd
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
}

func TestCSV(t *testing.T) {
	input := "\ufeffFirst Name,Last Name,E-mail,Notes,Favorite Color\r\n" +
		"Ada,Lovelace,ada@example.com,\"Likes tea, not coffee\",blue\r\n" +
		"\r\n" +
		"Bo,Li,bo@example.com,\"Two\r\nlines\",\r\n" +
		",,,,\r\n" +
		"Cy,\"O'Neil\",cy@example.com,'=SUM(A1),green\r\n"
	rows, rd := readAll(t, input, source.FormatCSV)
	if len(rows) != 3 {
		t.Fatalf("read %d rows, want 3 (blank lines and empty records skipped)", len(rows))
	}
	wantLines := []int{2, 4, 7}
	for i, r := range rows {
		if r.Number != i+1 || r.Line != wantLines[i] || r.Err != nil {
			t.Errorf("row %d: number %d line %d err %v; want number %d line %d", i, r.Number, r.Line, r.Err, i+1, wantLines[i])
		}
	}
	if got := rows[0].Values; !reflect.DeepEqual(got, map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email_1": "ada@example.com", "notes": "Likes tea, not coffee"}) {
		t.Errorf("row 1 values = %v", got)
	}
	if got := rows[1].Values["notes"]; got != "Two\nlines" {
		t.Errorf("quoted newline = %q", got)
	}
	if got := rows[2].Values["notes"]; got != "=SUM(A1)" {
		t.Errorf("a neutralised cell reads back as %q, want =SUM(A1)", got)
	}
	if got := rows[0].Columns[4]; got != (importer.Column{Name: "Favorite Color", Value: "blue"}) {
		t.Errorf("unknown column kept as %+v", got)
	}
	if got := rd.Columns(); !reflect.DeepEqual(got, []string{"First Name", "Last Name", "E-mail", "Notes", "Favorite Color"}) {
		t.Errorf("Columns() = %q (the BOM must not stick to the first)", got)
	}
	if got := rd.UnknownColumns(); !reflect.DeepEqual(got, []string{"Favorite Color"}) {
		t.Errorf("UnknownColumns() = %q", got)
	}
}

func TestCSVBadRecordsDoNotStopTheFile(t *testing.T) {
	input := "first_name,last_name\nAda,Lovelace\nBo,Li,extra\nCy,\"unclosed\"x\nDi,Ng\n"
	rows, _ := readAll(t, input, source.FormatCSV)
	if len(rows) != 4 {
		t.Fatalf("read %d rows, want 4", len(rows))
	}
	if rows[1].Err == nil || !strings.Contains(rows[1].Err.Error(), "3 fields, the header has 2") {
		t.Errorf("ragged row error = %v", rows[1].Err)
	}
	if rows[2].Err == nil || rows[2].Line != 4 {
		t.Errorf("bad quote: line %d error %v; want line 4 and an error", rows[2].Line, rows[2].Err)
	}
	if rows[3].Err != nil || rows[3].Values["first_name"] != "Di" {
		t.Errorf("row after the bad ones = %+v", rows[3])
	}
}

func TestCSVDuplicateAndEmptyHeaders(t *testing.T) {
	rows, rd := readAll(t, "Email,E-mail,,Name\na@example.com,b@example.com,x,y\n", source.FormatCSV)
	if got := rows[0].Values["email_1"]; got != "a@example.com" {
		t.Errorf("email_1 = %q; the first column that claims a field keeps it", got)
	}
	if got := rd.UnknownColumns(); !reflect.DeepEqual(got, []string{"E-mail", "column 3", "Name"}) {
		t.Errorf("UnknownColumns() = %q", got)
	}
}

func TestJSONArray(t *testing.T) {
	input := `[
  {"first_name": "Ada", "last_name": "Lovelace", "rent_due_day": 5, "notes": null, "tags": ["a", "b"]},
  "not an object",
  {"First Name": "Bo", "active": true}
]`
	rows, rd := readAll(t, input, source.FormatJSON)
	if len(rows) != 3 {
		t.Fatalf("read %d rows, want 3", len(rows))
	}
	if got := rows[0].Values; !reflect.DeepEqual(got, map[string]string{"first_name": "Ada", "last_name": "Lovelace", "rent_due_day": "5", "notes": ""}) {
		t.Errorf("row 1 values = %v", got)
	}
	if rows[0].Line != 2 || rows[2].Line != 4 {
		t.Errorf("lines = %d, %d; want 2, 4", rows[0].Line, rows[2].Line)
	}
	if rows[1].Err == nil || !strings.Contains(rows[1].Err.Error(), "not a JSON object") {
		t.Errorf("row 2 error = %v", rows[1].Err)
	}
	if got := rows[0].Columns[4].Value; got != `["a","b"]` {
		t.Errorf("nested value kept as %q", got)
	}
	if got := rows[2].Values["first_name"]; got != "Bo" {
		t.Errorf("objects may spell a field differently: first_name = %q", got)
	}
	if got := rd.UnknownColumns(); !reflect.DeepEqual(got, []string{"tags", "active"}) {
		t.Errorf("UnknownColumns() = %q", got)
	}
}

func TestJSONSyntaxErrorNamesTheLine(t *testing.T) {
	rd, err := source.Open(strings.NewReader("[\n{\"first_name\": \"Ada\"},\n{\"first_name\": \"Bo\",,}\n]"), source.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); err != nil {
		t.Fatalf("first row: %v", err)
	}
	_, err = rd.Next()
	var syn *source.SyntaxError
	if !errors.As(err, &syn) || syn.Line != 3 {
		t.Fatalf("error = %v, want a SyntaxError on line 3", err)
	}
	if _, err := source.Open(strings.NewReader(`{"first_name": "Ada"}`), source.FormatJSON); err == nil || !strings.Contains(err.Error(), "--format ndjson") {
		t.Errorf("an object instead of an array: %v", err)
	}
}

func TestNDJSON(t *testing.T) {
	input := "{\"first_name\":\"Ada\"}\r\n\n{broken\n{\"first_name\":\"Bo\"}"
	rows, _ := readAll(t, input, source.FormatNDJSON)
	if len(rows) != 3 {
		t.Fatalf("read %d rows, want 3", len(rows))
	}
	if rows[0].Values["first_name"] != "Ada" || rows[0].Line != 1 {
		t.Errorf("row 1 = %+v", rows[0])
	}
	if rows[1].Err == nil || rows[1].Line != 3 || !strings.Contains(rows[1].Err.Error(), "line 3") {
		t.Errorf("row 2 = %+v, want an error on line 3", rows[1])
	}
	if rows[2].Values["first_name"] != "Bo" || rows[2].Line != 4 {
		t.Errorf("row 3 (no final newline) = %+v", rows[2])
	}
}

func TestEmptyFiles(t *testing.T) {
	for _, format := range source.Formats {
		if _, err := source.Open(strings.NewReader(""), format); format != source.FormatNDJSON && !errors.Is(err, source.ErrEmpty) {
			t.Errorf("%s: Open(empty) error = %v, want ErrEmpty", format, err)
		}
	}
}

func TestFormatOf(t *testing.T) {
	tests := []struct{ path, flag, want, wantErr string }{
		{path: "a.csv", want: "csv"}, {path: "a.CSV", want: "csv"}, {path: "a.json", want: "json"},
		{path: "a.ndjson", want: "ndjson"}, {path: "a.jsonl", want: "ndjson"},
		{path: "a.txt", flag: "CSV", want: "csv"},
		{path: "a.txt", wantErr: "cannot tell the format"},
		{path: "a.csv", flag: "xml", wantErr: `--format "xml"`},
	}
	for _, tt := range tests {
		got, err := source.FormatOf(tt.path, tt.flag)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("FormatOf(%q, %q) error = %v, want %q", tt.path, tt.flag, err, tt.wantErr)
			}
			continue
		}
		if got != tt.want || err != nil {
			t.Errorf("FormatOf(%q, %q) = %q, %v; want %q", tt.path, tt.flag, got, err, tt.want)
		}
	}
}

// The three samples hold the same kind of residents: every one reads, with
// no broken rows.
func TestSamplesRead(t *testing.T) {
	for _, name := range []string{"residents.csv", "residents.json", "residents.ndjson", "residents-with-errors.csv"} {
		f, err := os.Open("../../samples/" + name)
		if err != nil {
			t.Fatal(err)
		}
		format, _ := source.FormatOf(name, "")
		b, _ := io.ReadAll(f)
		f.Close()
		rows, _ := readAll(t, string(b), format)
		for _, r := range rows {
			if r.Err != nil {
				t.Errorf("%s %s: %v", name, r.Where(), r.Err)
			}
		}
		if len(rows) < 10 {
			t.Errorf("%s: %d rows", name, len(rows))
		}
	}
}

// FuzzCSV checks that no input makes the reader panic or loop, and that the
// rows it reads come out numbered in order.
func FuzzCSV(f *testing.F) {
	seedFrom(f, ".csv")
	f.Add([]byte("a,b\n\"x\ny\",z\n"))
	f.Fuzz(func(t *testing.T, data []byte) { readFuzzed(t, data, source.FormatCSV) })
}

// FuzzNDJSON does the same for NDJSON.
func FuzzNDJSON(f *testing.F) {
	seedFrom(f, ".ndjson")
	f.Fuzz(func(t *testing.T, data []byte) { readFuzzed(t, data, source.FormatNDJSON) })
}

// endless yields a head, then the same byte forever: a line (or JSON
// value) that never ends.
type endless struct {
	head []byte
	fill byte
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.head)
	e.head = e.head[n:]
	for i := n; i < len(p); i++ {
		p[i] = e.fill
	}
	return len(p), nil
}

// A record that never ends is not held in memory: past HardRecordFactor
// times --max-record-bytes the reader stops with an error naming the
// place. (A reader that held the record would never return here.)
func TestRecordsThatNeverEndStopTheReader(t *testing.T) {
	limits := importer.Limits{MaxRecordBytes: 4 << 10}
	for _, tt := range []struct{ format, head string }{
		{source.FormatCSV, "First Name,Notes\nAda,"},
		{source.FormatCSV, "First Name,Notes\nAda,\"quoted\n"},
		{source.FormatJSON, `[{"first_name":"Ada"},{"notes":"`},
	} {
		rd, err := source.Open(&endless{head: []byte(tt.head), fill: 'x'}, tt.format, source.Options{Limits: limits})
		if err != nil {
			t.Fatal(err)
		}
		var syn *source.SyntaxError
		for i := 0; ; i++ {
			_, err := rd.Next()
			if err == nil && i < 2 {
				continue
			}
			if !errors.As(err, &syn) || !strings.Contains(err.Error(), "a record is longer than") || syn.Line < 1 {
				t.Errorf("%s %q: %v, want a record too long, with its line", tt.format, tt.head, err)
			}
			break
		}
	}
}

// An NDJSON line past --max-record-bytes is an invalid row, skipped
// without being held whole; the next lines are read.
func TestLongNDJSONLineIsAnInvalidRow(t *testing.T) {
	input := `{"first_name":"Ada"}` + "\n" + `{"notes":"` + strings.Repeat("x", 100<<10) + `"}` + "\n" + `{"first_name":"Bo"}` + "\n"
	rd, err := source.Open(strings.NewReader(input), source.FormatNDJSON, source.Options{Limits: importer.Limits{MaxRecordBytes: 1 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	var rows []importer.Row
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if len(rows) != 3 || rows[1].Err == nil || !strings.Contains(rows[1].Err.Error(), "line 2: the record is") || rows[2].Values["first_name"] != "Bo" || rows[2].Line != 3 {
		t.Errorf("rows = %+v", rows)
	}
}

// Every JSON record may bring keys of its own; each is a column of the
// report. Past --max-columns different keys in the whole file, the file is
// refused, so the report grows with the input, not with its square.
func TestJSONKeysAreBoundedForTheWholeFile(t *testing.T) {
	for _, format := range []string{source.FormatNDJSON, source.FormatJSON} {
		var b strings.Builder
		if format == source.FormatJSON {
			b.WriteString("[")
		}
		for i := 0; i < 300; i++ {
			if format == source.FormatJSON && i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"first_name":"R%d","key_%d":"v"}`+"\n", i, i)
		}
		if format == source.FormatJSON {
			b.WriteString("]")
		}
		rd, err := source.Open(strings.NewReader(b.String()), format, source.Options{Limits: importer.Limits{MaxColumns: 100}})
		if err != nil {
			t.Fatal(err)
		}
		read := 0
		var last error
		for {
			_, err := rd.Next()
			if err != nil {
				last = err
				break
			}
			read++
		}
		if !strings.Contains(fmt.Sprint(last), "more than 100 different keys") || read != 99 || len(rd.Columns()) > 100 {
			t.Errorf("%s: %d rows read, %d columns, then %v; want 99 rows, at most 100 columns, then the file refused", format, read, len(rd.Columns()), last)
		}
	}
}

// Renaming repeated header names is linear: 40,000 columns all named "x"
// are read at once, each with a name of its own.
func TestManyRepeatedHeaderNames(t *testing.T) {
	header := strings.TrimSuffix(strings.Repeat("x,", 40000), ",")
	rd, err := source.Open(strings.NewReader(header+"\n"), source.FormatCSV, source.Options{Limits: importer.Limits{MaxColumns: 50000}})
	if err != nil {
		t.Fatal(err)
	}
	cols := rd.Columns()
	if len(cols) != 40000 || cols[1] != "x (2)" || cols[39999] != "x (40000)" {
		t.Errorf("%d columns, %q ... %q", len(cols), cols[1], cols[len(cols)-1])
	}
}

// A failed.csv run again ends with row, error_code and error: the reader
// leaves those out. A file with its own "error" column keeps it.
func TestFailedCSVColumnsAreLeftOut(t *testing.T) {
	rows, rd := readAll(t, "First Name,E-mail,row,error_code,error\nAda,ada@example.com,4,invalid_request,Invalid request body\n", source.FormatCSV)
	if got := rd.Columns(); strings.Join(got, ",") != "First Name,E-mail" {
		t.Errorf("columns %q", got)
	}
	if got := rd.IgnoredColumns(); strings.Join(got, ",") != "row,error_code,error" {
		t.Errorf("ignored %q", got)
	}
	if len(rows) != 1 || len(rows[0].Columns) != 2 || rows[0].Values["email_1"] != "ada@example.com" || rows[0].Err != nil {
		t.Errorf("row %+v", rows)
	}
	_, rd = readAll(t, "First Name,error\nAda,none\n", source.FormatCSV)
	if len(rd.IgnoredColumns()) != 0 || len(rd.Columns()) != 2 {
		t.Errorf("a file's own error column: columns %q, ignored %q", rd.Columns(), rd.IgnoredColumns())
	}
}

// A CSV file separated by another character reads with its delimiter; read
// with a comma, it has no column of a resident, and the reader guesses the
// separator.
func TestDelimiter(t *testing.T) {
	input := "First Name;Last Name;E-mail\nAda;Lovelace;ada@example.com\n"
	rd, err := source.Open(strings.NewReader(input), source.FormatCSV, source.Options{Delimiter: ';'})
	if err != nil {
		t.Fatal(err)
	}
	row, err := rd.Next()
	if err != nil || row.Values["last_name"] != "Lovelace" || rd.CheckColumns() != nil {
		t.Errorf("with ';': %+v %v %v", row, err, rd.CheckColumns())
	}
	_, rd = readAll(t, input, source.FormatCSV)
	if err := rd.CheckColumns(); err == nil || !strings.Contains(err.Error(), "looks separated by ';'; give --delimiter ';'") {
		t.Errorf("with a comma: %v", err)
	}
}
