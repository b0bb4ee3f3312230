package source_test

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/source"
)

// workbook writes an .xlsx as a spreadsheet program saves one: a title
// sheet first, then the roster under a merged title row, with people's
// column labels, dates in two
// display formats (a built-in and a day-first custom one), a rent shown as
// currency, a blank row, and a row longer than the header.
func workbook(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "Notes")
	f.SetCellValue("Notes", "A1", "Exported from the PMS")
	if _, err := f.NewSheet("Roster"); err != nil {
		t.Fatal(err)
	}
	builtin, _ := f.NewStyle(&excelize.Style{NumFmt: 14})
	dayFirst := "dd/mm/yyyy"
	custom, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &dayFirst})
	currency, _ := f.NewStyle(&excelize.Style{NumFmt: 164, CustomNumFmt: ptr("$#,##0.00")})
	// A title merged across the columns and a blank row above the header,
	// as exports put them.
	f.SetCellValue("Roster", "A1", "Residents of Maple Court, exported 2026-12-01")
	if err := f.MergeCell("Roster", "A1", "E1"); err != nil {
		t.Fatal(err)
	}
	rows := [][]any{
		{"First Name", "Last Name", "E-mail", "Date of Birth", "Rent"},
		{"Ada", "Lovelace", "ada@example.com", time.Date(1990, 4, 23, 0, 0, 0, 0, time.UTC), 1250},
		{},
		{"Bo", "Li", "bo@example.com", time.Date(1985, 12, 1, 0, 0, 0, 0, time.UTC), 980.5},
		{"Cy", "Ng", "cy@example.com", "1979-02-03", 700, "extra"},
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+3)
		if err := f.SetSheetRow("Roster", cell, &r); err != nil {
			t.Fatal(err)
		}
	}
	f.SetCellStyle("Roster", "D4", "D4", builtin)
	f.SetCellStyle("Roster", "D6", "D6", custom)
	f.SetCellStyle("Roster", "E4", "E7", currency)
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ptr[T any](v T) *T { return &v }

func readXLSX(t *testing.T, data []byte, sheet string) ([]importer.Row, *source.Reader, error) {
	t.Helper()
	rd, err := source.Open(bytes.NewReader(data), source.FormatXLSX, source.Options{Sheet: sheet})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() { rd.Close() })
	var rows []importer.Row
	for {
		row, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return rows, rd, nil
		}
		if err != nil {
			t.Fatalf("Next after %d rows: %v", len(rows), err)
		}
		rows = append(rows, row)
	}
}

func TestXLSXReadsTheNamedSheetWithDatesAsDates(t *testing.T) {
	rows, rd, err := readXLSX(t, workbook(t), "Roster")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3 (the blank row skipped): %+v", len(rows), rows)
	}
	want := []struct {
		line              int
		first, email, dob string
		rent              string
	}{
		{4, "Ada", "ada@example.com", "1990-04-23", "1250"},
		{6, "Bo", "bo@example.com", "1985-12-01", "980.5"},
		{7, "Cy", "cy@example.com", "1979-02-03", "700"},
	}
	for i, w := range want {
		r := rows[i]
		if r.Line != w.line || r.Values["first_name"] != w.first || r.Values["email_1"] != w.email || r.Values["date_of_birth"] != w.dob {
			t.Errorf("row %d = line %d %v, want line %d %s %s %s", i+1, r.Line, r.Values, w.line, w.first, w.email, w.dob)
		}
		if got := r.Columns[4].Value; got != w.rent {
			t.Errorf("row %d: rent %q, want the cell's value %q, not its currency display", i+1, got, w.rent)
		}
	}
	if rows[2].Err == nil || !strings.Contains(rows[2].Err.Error(), "row 7 has 6 cells, the header has 5") {
		t.Errorf("the long row: %v", rows[2].Err)
	}
	if got := rd.Columns(); len(got) != 6 || got[0] != "First Name" {
		t.Errorf("columns %q", got)
	}
}

func TestXLSXReadsTheFirstSheetByDefault(t *testing.T) {
	// The first sheet is a title: one cell, no header to read rows under.
	_, _, err := readXLSX(t, workbook(t), "")
	if err == nil || !strings.Contains(err.Error(), `sheet "Notes" has no header: no row of two cells or more (the workbook has "Notes", "Roster"; --sheet picks one)`) {
		t.Errorf("err = %v", err)
	}
}

func TestXLSXNamesTheSheetsItHas(t *testing.T) {
	_, _, err := readXLSX(t, workbook(t), "Residents")
	if err == nil || !strings.Contains(err.Error(), `no sheet "Residents" (it has "Notes", "Roster")`) {
		t.Errorf("err = %v", err)
	}
	_, _, err = readXLSX(t, []byte("first_name\nAda\n"), "")
	if err == nil || !strings.Contains(err.Error(), "not a readable Excel workbook") {
		t.Errorf("a CSV read as a workbook: %v", err)
	}
}

func TestXLSXFormatFromTheName(t *testing.T) {
	if f, err := source.FormatOf("roster.XLSX", ""); err != nil || f != source.FormatXLSX {
		t.Errorf("FormatOf = %q, %v", f, err)
	}
	if f, err := source.FormatOf("roster.bin", "xlsx"); err != nil || f != source.FormatXLSX {
		t.Errorf("--format xlsx = %q, %v", f, err)
	}
}

// A workbook saved by a spreadsheet program itself (LibreOffice Calc 7.4
// converted testdata/maple-court.fods to .xlsx: its own OOXML writer, shared
// strings and styles), with a title merged across the columns above the
// header and the two date columns stored as dates shown day first, reads
// as the CSV of the same residents does: the same rows, the same values.
func TestXLSXSavedByASpreadsheetProgram(t *testing.T) {
	data, err := os.ReadFile("testdata/maple-court.xlsx")
	if err != nil {
		t.Fatal(err)
	}
	rows, rd, err := readXLSX(t, data, "")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("../../samples/residents.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	csvRows, err := source.Open(f, source.FormatCSV, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rd.Columns(), csvRows.Columns(); !slices.Equal(got, want) {
		t.Errorf("columns %q, want the CSV's %q (the merged title passed over)", got, want)
	}
	if len(rows) != 20 {
		t.Fatalf("%d rows, want the workbook's 20", len(rows))
	}
	for i, row := range rows {
		want, err := csvRows.Next()
		if err != nil {
			t.Fatal(err)
		}
		if row.Err != nil || !maps.Equal(row.Values, want.Values) {
			t.Errorf("row %d (line %d): %v %v\nwant %v", i+1, row.Line, row.Err, row.Values, want.Values)
		}
		if row.Line != i+3 {
			t.Errorf("row %d is on line %d, want %d (under the title and the header)", i+1, row.Line, i+3)
		}
	}
	if rows[0].Values["date_of_birth"] != "1970-03-13" {
		t.Errorf("the first date of birth, shown 13/03/1970: %q", rows[0].Values["date_of_birth"])
	}
}
