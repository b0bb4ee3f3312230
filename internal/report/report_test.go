package report_test

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/report"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func rowsOf(rows []importer.ReportRow) iter.Seq2[importer.ReportRow, error] {
	return func(yield func(importer.ReportRow, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func sample() (importer.Summary, []string, []importer.ReportRow) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	sum := importer.Summary{ImportID: "residents-0123456789ab", File: "residents.csv", Vendor: importer.VendorGeneric, Total: 8,
		Counts:         map[importer.Outcome]int{importer.Succeeded: 1, importer.Failed: 4, importer.Invalid: 1, importer.Duplicate: 1, importer.TimedOut: 1},
		UnknownColumns: []string{"Favorite Color"}, Requests: map[string]int{importer.EndpointCreate: 4}, StartedAt: at, FinishedAt: at.Add(time.Minute), Seconds: 60}
	cols := []string{"First Name", "E-mail", "Favorite Color"}
	c := func(first, email, color string) []importer.Column {
		return []importer.Column{{Name: "First Name", Value: first}, {Name: "E-mail", Value: email}, {Name: "Favorite Color", Value: color}}
	}
	rows := []importer.ReportRow{
		{Result: importer.RowResult{Row: 1, Outcome: importer.Succeeded, JobID: "job_1", RecordID: "res_1"}, Columns: c("Ada", "ada@example.com", "blue")},
		{Result: importer.RowResult{Row: 2, Outcome: importer.Invalid, ErrorCode: "invalid", Error: `email_1: "x" is not an email address`}, Columns: c("Bo", "x", "=HYPERLINK(\"http://evil\")")},
		{Result: importer.RowResult{Row: 3, Outcome: importer.Failed, JobID: "job_3", ErrorCode: "write_failed", Error: "Unit is occupied (409)"}, Columns: c("Cy", "cy@example.com", "+green")},
		{Result: importer.RowResult{Row: 4, Outcome: importer.Duplicate, ErrorCode: "duplicate", Error: "the same record as row 1"}, Columns: c("Ada", "ada@example.com", "blue")},
		{Result: importer.RowResult{Row: 5, Outcome: importer.TimedOut, JobID: "job_5", ErrorCode: "timed_out"}, Columns: c("Di", "di@example.com", "")},
		{Result: importer.RowResult{Row: 6, Outcome: importer.Failed, ErrorCode: importer.CodeInDoubt, Error: "may exist"}, Columns: []importer.Column{{Name: "E-mail", Value: "ed@example.com"}}},
		{Result: importer.RowResult{Row: 7, Outcome: importer.Failed, ErrorCode: "invalid_request", Error: "Invalid request body (last_name: Required)"}, Columns: c("Fay", "fay@example.com", "")},
		{Result: importer.RowResult{Row: 8, Outcome: importer.Failed, JobID: "job_8", ErrorCode: importer.CodeJobNotFound, Error: "the API does not know this write job"}, Columns: c("Gus", "gus@example.com", "")},
	}
	return sum, cols, rows
}

func TestWriteMatchesGoldenFiles(t *testing.T) {
	sum, cols, rows := sample()
	dir, err := report.Write(t.TempDir(), sum, cols, rowsOf(rows), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{report.ResultsFile, report.FailedFile, report.SummaryFile} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", name+".golden")
		if *update {
			os.MkdirAll("testdata", 0o755)
			os.WriteFile(golden, got, 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from %s:\n%s", name, golden, got)
		}
	}
}

func TestReportShape(t *testing.T) {
	sum, cols, rows := sample()
	dir, err := report.Write(t.TempDir(), sum, cols, rowsOf(rows), nil)
	if err != nil {
		t.Fatal(err)
	}
	results := readCSV(t, filepath.Join(dir, report.ResultsFile))
	if got := strings.Join(results[0], ","); got != "row,status,action,job_id,record_id,error_code,error,First Name,E-mail,Favorite Color" {
		t.Errorf("results header = %s", got)
	}
	if len(results) != 1+len(rows) {
		t.Fatalf("results.csv has %d lines, want one per record", len(results)-1)
	}
	for i, line := range results[1:] {
		if line[0] != strings.TrimSpace(line[0]) || line[0] != itoa(i+1) {
			t.Errorf("line %d is row %s: input order lost", i+1, line[0])
		}
	}
	if got := results[2][9]; got != `'=HYPERLINK("http://evil")` {
		t.Errorf("formula cell written as %q, want it neutralised", got)
	}
	if got := results[6]; got[7] != "" || got[8] != "ed@example.com" {
		t.Errorf("a record without some columns = %q", got)
	}
	failed := readCSV(t, filepath.Join(dir, report.FailedFile))
	var names []string
	for _, line := range failed[1:] {
		names = append(names, line[0])
	}
	if got := strings.Join(names, ","); got != "Bo,Fay" {
		t.Errorf("failed.csv holds %s; want the invalid row and the create the API refused (no row that got a job id, nor duplicate, timed out or in doubt)", got)
	}
	if strings.Join(failed[0], ",") != strings.Join(cols, ",")+",row,error_code,error" {
		t.Errorf("failed.csv header = %q, want the original columns, then row, error_code and error", failed[0])
	}
	if got := failed[2][3:]; strings.Join(got, "|") != "7|invalid_request|Invalid request body (last_name: Required)" {
		t.Errorf("failed.csv's row 7 ends with %q, want its row, code and error", got)
	}
	var back importer.Summary
	b, _ := os.ReadFile(filepath.Join(dir, report.SummaryFile))
	if err := json.Unmarshal(b, &back); err != nil || back.Counts[importer.Failed] != 4 || back.ImportID != sum.ImportID {
		t.Errorf("summary.json = %s (%v)", b, err)
	}
	for _, name := range []string{report.ResultsFile, report.FailedFile, report.SummaryFile} {
		info, _ := os.Stat(filepath.Join(dir, name))
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("report folder has mode %v, want 0700", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("report folder holds %d files, want 3 (no temporary files left)", len(entries))
	}
}

func TestNeutralize(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+1 555": "'+1 555", "-2": "'-2", "@SUM": "'@SUM", "\tx": "'\tx", "Ada": "Ada", "": "", "a=b": "a=b"} {
		if got := report.Neutralize(in); got != want {
			t.Errorf("Neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return records
}

func itoa(n int) string { return strconv.Itoa(n) }

// The streams a browser downloads are the files Write writes.
func TestStreamsMatchTheFiles(t *testing.T) {
	sum, cols, rows := sample()
	dir, err := report.Write(t.TempDir(), sum, cols, rowsOf(rows), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func(*strings.Builder) error{
		report.ResultsFile: func(b *strings.Builder) error { return report.WriteResults(b, cols, rowsOf(rows)) },
		report.FailedFile:  func(b *strings.Builder) error { return report.WriteFailed(b, cols, rowsOf(rows)) },
		report.SummaryFile: func(b *strings.Builder) error { return report.WriteSummary(b, sum) },
	} {
		var b strings.Builder
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		file, _ := os.ReadFile(filepath.Join(dir, name))
		if b.String() != string(file) {
			t.Errorf("%s: the stream differs from the file", name)
		}
	}
}
