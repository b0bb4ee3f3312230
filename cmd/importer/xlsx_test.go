package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// A roster exported as an Excel workbook imports as its CSV does: the sheet
// named by --sheet (after a title sheet), its dates stored as dates and
// shown day first, which reach the API as YYYY-MM-DD (a row whose date of
// birth did not would fail validation).
func TestRunAnExcelWorkbook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	records := readCSV(t, sample(t, "residents.csv"))
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "About")
	f.SetCellValue("About", "A1", "Residents, exported nightly")
	f.NewSheet("Roster")
	dayFirst := "dd/mm/yyyy"
	dates, _ := f.NewStyle(&excelize.Style{CustomNumFmt: &dayFirst})
	for i, rec := range records {
		row := make([]any, len(rec))
		for j, v := range rec {
			row[j] = v
			if i > 0 && (records[0][j] == "Date of Birth" || records[0][j] == "Move-in Date") && v != "" {
				d, err := time.Parse(time.DateOnly, v)
				if err != nil {
					t.Fatal(err)
				}
				row[j] = d
			}
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := f.SetSheetRow("Roster", cell, &row); err != nil {
			t.Fatal(err)
		}
	}
	f.SetColStyle("Roster", "H", dates)
	path := filepath.Join(dir, "residents.xlsx")
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}

	r := runImporter(t, dir, nil, append([]string{"run", "--sheet", "Roster", path}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "50 succeeded") {
		t.Fatalf("exit %d, want 0 and 50 succeeded\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runImporter(t, dir, nil, "run", "--dry-run", "--sheet", "Residents", path); r.code != 2 || !strings.Contains(r.stderr, `no sheet "Residents" (it has "About", "Roster")`) {
		t.Errorf("a sheet the workbook lacks: exit %d\n%s", r.code, r.stderr)
	}
}
