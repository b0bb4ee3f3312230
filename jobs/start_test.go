package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/jobs"
)

// storedImport is what an import stores of a file, without what differs
// from one run to the next (times, job and record ids).
type storedImport struct {
	ID, File, SHA256 string
	Options          importer.Options
	Total            int
	Columns          importer.FileColumns
	Rows             []string
}

func (e *env) stored(t *testing.T, id string) storedImport {
	t.Helper()
	ctx := context.Background()
	imp, err := e.store.Import(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	s := storedImport{ID: imp.ID, File: imp.File, SHA256: imp.FileSHA256, Options: imp.Options, Total: imp.Total,
		Columns: importer.FileColumns{Names: imp.Columns, Unknown: imp.UnknownColumns, Ignored: imp.IgnoredColumns}}
	for row, err := range e.store.Rows(ctx, id, imp.Total) {
		if err != nil {
			t.Fatal(err)
		}
		r := row.Result
		s.Rows = append(s.Rows, fmt.Sprintf("%d line %d %s %s %q %v", r.Row, r.Line, r.Outcome, r.ErrorCode, r.Error, row.Columns))
	}
	return s
}

// rosterWithLongField is a roster whose second resident has a last name
// longer than the limit the test sets.
func rosterWithLongField(t *testing.T, dir string) string {
	t.Helper()
	content := "First Name,Last Name,E-mail,Notes\n" +
		"Ada,Lovelace,ada@example.com,first\n" +
		"Bo," + strings.Repeat("Long", 20) + ",bo@example.com,too long a name\n" +
		"Cy,Twombly,not-an-email,bad email\n" +
		"Di,Prima,di@example.com,fine\n"
	path := filepath.Join(dir, "roster.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	return path
}

// 'importer run' and a schedule start a file through the same code: the
// same file, options and limits store the same import, row for row, and end
// with the same outcomes.
func TestRunAndScheduleStartAFileAlike(t *testing.T) {
	t.Parallel()
	limits := importer.Limits{MaxFieldBytes: 40}
	// Create-only: the second start sends the rows again to the same
	// sandbox, whose residents a sync would find unchanged.
	opts := importer.Options{IntegrationID: "int_rentvine_demo", Format: "csv", Mode: importer.ModeCreate}

	// As 'importer run' does: Inspect, then Start.
	in := newInbox(t, jobs.ScheduledImport{Options: opts, Limits: limits})
	ctx := context.Background()
	path := rosterWithLongField(t, t.TempDir())
	normalized, err := opts.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	f, err := jobs.Inspect(ctx, jobs.Input{Path: path, Shown: path, Name: "roster.csv", Options: normalized, Limits: limits.WithDefaults()})
	if err != nil {
		t.Fatal(err)
	}
	started, err := in.h.Start(ctx, jobs.StartRequest{File: f})
	if err != nil {
		t.Fatal(err)
	}
	if !started.Created || started.Split.Total != 4 || started.Split.Invalid != 2 {
		t.Fatalf("run's start: %+v", started)
	}
	serve(t, in.rdb, in.h, 1, 4)
	waitFinished(t, in.store, started.Import.ID, 20*time.Second)
	byRun := in.stored(t, started.Import.ID)

	// As a schedule does, on an emptied Redis: the file dropped in an
	// inbox, claimed at a firing.
	if err := in.rdb.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	rosterWithLongField(t, in.dir)
	in.fire(t)
	ids := in.imports(t)
	if len(ids) != 1 {
		t.Fatalf("the schedule started %v", ids)
	}
	waitFinished(t, in.store, ids[0], 20*time.Second)
	bySchedule := in.stored(t, ids[0])

	if !reflect.DeepEqual(byRun, bySchedule) {
		t.Errorf("the two ways stored different imports:\nrun:      %+v\nschedule: %+v", byRun, bySchedule)
	}
	long := byRun.Rows[1]
	if !strings.Contains(long, "invalid") || !strings.Contains(long, "40") {
		t.Errorf("row 2 breaks the 40-byte limit but was stored as %s", long)
	}
}

// Start refuses the content of a create-only import under another name,
// and starts it anew under an id of its own with Again.
func TestStartRefusesAContentImportedBeforeUnlessAgain(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{})
	ctx := context.Background()
	dir := t.TempDir()
	path := rosterWithLongField(t, dir)
	opts, _ := importer.Options{IntegrationID: "int_rentvine_demo", Format: "csv", Mode: importer.ModeCreate}.Normalize()
	inspect := func(name string) jobs.Inspected {
		f, err := jobs.Inspect(ctx, jobs.Input{Path: path, Shown: name, Name: name, Options: opts, Limits: importer.DefaultLimits})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	first, err := in.h.Start(ctx, jobs.StartRequest{File: inspect("a.csv")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.h.Start(ctx, jobs.StartRequest{File: inspect("b.csv")})
	var content *jobs.ContentImportedError
	if !errors.As(err, &content) || content.Other.ID != first.Import.ID {
		t.Fatalf("the same content as b.csv: %v, want it refused naming %s", err, first.Import.ID)
	}
	again, err := in.h.Start(ctx, jobs.StartRequest{File: inspect("a.csv"), Again: true})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Created || again.Import.ID != first.Import.ID+"-2" {
		t.Errorf("--again started %+v, want a new import %s-2", again.Import.ID, first.Import.ID)
	}
	same, err := in.h.Start(ctx, jobs.StartRequest{File: inspect("a.csv")})
	if err != nil || same.Created || same.Import.ID != first.Import.ID {
		t.Errorf("a.csv started again: %+v, %v; want the first import resumed", same, err)
	}
}

// A sync's roster is the night's: once the import of its content has
// finished, the same roster written again — under its name, as cron
// leaves it, or under another — is a new import that sends nothing already
// in place; run again before it is written again, it is the same import
// (issue 22). A copy made while the import runs is refused.
func TestASyncRosterWrittenAgainIsTheNextNight(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{})
	ctx := context.Background()
	dir := t.TempDir()
	content := "First Name,Last Name,E-mail\nAda,Lovelace,ada@example.com\nBo,Li,bo@example.com\n"
	write := func(name string, at time.Time) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, at, at)
		return path
	}
	opts, _ := importer.Options{IntegrationID: "int_rentvine_demo", Format: "csv"}.Normalize()
	start := func(path string) (jobs.Started, error) {
		f, err := jobs.Inspect(ctx, jobs.Input{Path: path, Shown: path, Name: filepath.Base(path), Options: opts, Limits: importer.DefaultLimits})
		if err != nil {
			t.Fatal(err)
		}
		return in.h.Start(ctx, jobs.StartRequest{File: f})
	}
	night1, err := start(write("roster.csv", time.Now().Add(-time.Hour)))
	if err != nil || !night1.Created {
		t.Fatalf("night 1: %+v %v", night1, err)
	}
	_, err = start(write("roster-copy.csv", time.Now().Add(-time.Hour)))
	var content2 *jobs.ContentImportedError
	if !errors.As(err, &content2) {
		t.Errorf("a copy while night 1 runs: %v, want it refused", err)
	}
	serve(t, in.rdb, in.h, 1, 4)
	waitFinished(t, in.store, night1.Import.ID, 20*time.Second)

	shown, err := start(filepath.Join(dir, "roster.csv")) // run again, as it was
	if err != nil || !shown.Finished || shown.Import.ID != night1.Import.ID {
		t.Errorf("the same command again: %+v %v, want night 1's result", shown, err)
	}
	writes := in.sandbox.Stats().Creates + in.sandbox.Stats().Updates
	night2, err := start(write("roster.csv", time.Now())) // the next night's export
	if err != nil || !night2.Created || night2.Import.ID != night1.Import.ID+"-2" {
		t.Fatalf("night 2, the same roster: %+v %v, want a new import %s-2", night2, err, night1.Import.ID)
	}
	waitFinished(t, in.store, night2.Import.ID, 20*time.Second)
	if p, _ := in.store.Progress(ctx, night2.Import.ID); p.Counts[importer.Unchanged] != 2 {
		t.Errorf("night 2's counts %v, want 2 unchanged", p.Counts)
	}
	if again, err := start(filepath.Join(dir, "roster.csv")); err != nil || !again.Finished || again.Import.ID != night2.Import.ID {
		t.Errorf("night 2's command again: %+v %v, want night 2's result", again, err)
	}
	night3, err := start(write("roster-2026-12-07.csv", time.Now())) // dated exports
	if err != nil || !night3.Created {
		t.Fatalf("night 3 under another name: %+v %v, want a new import", night3, err)
	}
	waitFinished(t, in.store, night3.Import.ID, 20*time.Second)
	if st := in.sandbox.Stats(); st.Creates+st.Updates != writes {
		t.Errorf("nights 2 and 3 wrote %d times, want nothing: the roster was in place", st.Creates+st.Updates-writes)
	}
}

// Night 1's roster run again after night 2 (with --again, as 'status'
// once advised) sends nothing to the residents night 2 wrote: the ledger
// knows night 2's roster is newer. A row night 2 did not write is decided
// as ever.
func TestAnOlderRosterNeverRevertsANewerNight(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{})
	ctx := context.Background()
	dir := t.TempDir()
	opts, _ := importer.Options{IntegrationID: "int_rentvine_demo", Format: "csv"}.Normalize()
	write := func(name, content string, at time.Time) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
		return path
	}
	start := func(path string, again bool) jobs.Started {
		t.Helper()
		f, err := jobs.Inspect(ctx, jobs.Input{Path: path, Shown: path, Name: filepath.Base(path), Options: opts, Limits: importer.DefaultLimits})
		if err != nil {
			t.Fatal(err)
		}
		started, err := in.h.Start(ctx, jobs.StartRequest{File: f, Again: again})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		waitFinished(t, in.store, started.Import.ID, 20*time.Second)
		return started
	}
	header := "First Name,Last Name,E-mail,Phone,Phone Type\n"
	night1 := write("night-1.csv", header+"Ada,Lovelace,ada@example.com,555-010-0000,mobile\nBo,Li,bo@example.com,555-020-0000,mobile\n", time.Now().Add(-48*time.Hour))
	serve(t, in.rdb, in.h, 1, 4)
	start(night1, false)
	start(write("night-2.csv", header+"Ada,Lovelace,ada@example.com,555-999-0000,mobile\nBo,Li,bo@example.com,555-020-0000,mobile\n", time.Now().Add(-24*time.Hour)), false)
	before := in.sandbox.Stats()
	if before.Creates != 2 || before.Updates != 1 {
		t.Fatalf("nights 1 and 2 sent %d creates and %d updates, want 2 and 1", before.Creates, before.Updates)
	}

	again := start(night1, true)
	if after := in.sandbox.Stats(); after.Creates+after.Updates != before.Creates+before.Updates {
		t.Errorf("night 1's roster again sent %d writes, want none: night 2 wrote Ada since", after.Creates+after.Updates-before.Creates-before.Updates)
	}
	p, _ := in.store.Progress(ctx, again.Import.ID)
	if p.Counts[importer.Superseded] != 1 || p.Counts[importer.Unchanged] != 1 {
		t.Errorf("night 1 again: %v, want Ada superseded and Bo unchanged", p.Counts)
	}

	// A newer roster than night 2 writes as ever.
	start(write("night-3.csv", header+"Ada,Lovelace,ada@example.com,555-010-0000,mobile\nBo,Li,bo@example.com,555-020-0000,mobile\n", time.Now()), false)
	if after := in.sandbox.Stats(); after.Updates != before.Updates+1 {
		t.Errorf("night 3 sent %d updates, want 1 (Ada's phone back to night 1's)", after.Updates-before.Updates)
	}
}
