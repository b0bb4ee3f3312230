package jobs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/jobs"
)

// A schedule of Excel workbooks imports the sheet it names from each
// workbook the inbox receives, and files the workbook in done/.
func TestScheduledWorkbooksReadTheirSheet(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	in.s.Inbox = filepath.Join(in.dir, "*.xlsx")
	in.s.Options.Sheet = "Roster"
	f := excelize.NewFile()
	defer f.Close()
	f.SetCellValue("Sheet1", "A1", "Exported nightly") // the first sheet: a title only
	f.NewSheet("Roster")
	rows := [][]any{{"First Name", "Last Name", "E-mail"}}
	for i := 1; i <= 4; i++ {
		rows = append(rows, []any{"Resident", fmt.Sprint("Number", i), fmt.Sprintf("r%d@example.com", i)})
	}
	for i, r := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		f.SetSheetRow("Roster", cell, &r)
	}
	path := filepath.Join(in.dir, "roster.xlsx")
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)

	in.fire(t)
	ids := in.imports(t)
	if len(ids) != 1 {
		t.Fatalf("imports %v, want the workbook's", ids)
	}
	serve(t, in.rdb, in.h, 1, 10)
	waitFinished(t, in.store, ids[0], 20*time.Second)
	p, _ := in.store.Progress(context.Background(), ids[0])
	if p.Total != 4 || p.Counts[importer.Succeeded] != 4 {
		t.Errorf("progress %+v, want the sheet's 4 residents created", p)
	}
	for deadline := time.Now().Add(5 * time.Second); len(in.files(jobs.DoneDir)) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if done := in.files(jobs.DoneDir); len(done) != 1 || done[0] != "roster.xlsx" {
		t.Errorf("done/ holds %v, want the workbook", done)
	}
}
