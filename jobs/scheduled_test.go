package jobs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/jobs"
)

// inbox is a schedule's inbox with handlers that can read it.
type inbox struct {
	*env
	dir string
	s   jobs.ScheduledImport
}

func newInbox(t *testing.T, s jobs.ScheduledImport) *inbox {
	t.Helper()
	e := newEnv(t, "fixed:0s", nil)
	e.h = jobs.NewImports(e.api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second})
	dir := t.TempDir()
	s.Name, s.Inbox = "test", filepath.Join(dir, "*.csv")
	s.Options.IntegrationID = "int_rentvine_demo"
	return &inbox{env: e, dir: dir, s: s}
}

// drop writes a roster of n residents into the inbox, changed long enough
// ago to be complete.
func (in *inbox) drop(t *testing.T, name string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("First Name,Last Name,E-mail\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "Resident,Number%d,r%d@example.com\n", i, i)
	}
	path := filepath.Join(in.dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	return path
}

func (in *inbox) fire(t *testing.T) {
	t.Helper()
	task, _, err := jobs.NewScheduledImportTask(in.s)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.h.ProcessTask(context.Background(), task); err != nil {
		t.Fatal(err)
	}
}

func (in *inbox) files(folder string) []string {
	entries, _ := os.ReadDir(filepath.Join(in.dir, folder))
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func (e *env) imports(t *testing.T) []string {
	t.Helper()
	ids, err := e.store.Imports(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A file's content is its import, whatever its name and whenever it comes:
// the same roster dropped again while its import runs, or under another
// name, is filed with a note and sends nothing.
func TestScheduledContentIsTheImport(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	in.drop(t, "roster.csv", 5)
	in.fire(t)
	if ids := in.imports(t); len(ids) != 1 {
		t.Fatalf("imports %v after the first firing, want one", ids)
	}
	in.drop(t, "roster.csv", 5)      // again, while the first import runs
	in.drop(t, "roster-copy.csv", 5) // the same content under another name
	in.fire(t)
	if ids := in.imports(t); len(ids) != 1 {
		t.Errorf("imports %v: a copy was imported again", ids)
	}
	done := in.files(jobs.DoneDir)
	notes := 0
	for _, name := range done {
		if strings.HasSuffix(name, ".note.txt") {
			notes++
			b, _ := os.ReadFile(filepath.Join(in.dir, jobs.DoneDir, name))
			if !strings.Contains(string(b), "the same content as import "+in.imports(t)[0]) {
				t.Errorf("%s says %q", name, b)
			}
		}
	}
	if len(done) != 4 || notes != 2 {
		t.Errorf("done/ holds %v, want both copies with a note each", done)
	}
	if got := in.files(jobs.ProcessingDir); len(got) != 2 { // the file and its claim record
		t.Errorf("processing/ holds %v, want the first file (and its claim)", got)
	}
}

// A file still being written is not claimed: it must be left unchanged for
// the settle time, or have its ready marker.
func TestScheduledWaitsForCompleteFiles(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Minute})
	path := in.drop(t, "roster.csv", 3)
	now := time.Now()
	os.Chtimes(path, now, now) // just written
	in.fire(t)
	if ids := in.imports(t); len(ids) != 0 {
		t.Fatalf("a file changed a moment ago was claimed: %v", ids)
	}
	old := now.Add(-2 * time.Minute)
	os.Chtimes(path, old, old)
	in.fire(t)
	if ids := in.imports(t); len(ids) != 1 {
		t.Fatalf("a settled file was not claimed: %v", ids)
	}

	t.Run("ready marker", func(t *testing.T) { // a Redis database of its own
		marked := newInbox(t, jobs.ScheduledImport{ReadyMarker: ".done"})
		path := marked.drop(t, "roster.csv", 3)
		marked.fire(t)
		if ids := marked.imports(t); len(ids) != 0 {
			t.Fatalf("a file without its ready marker was claimed: %v", ids)
		}
		os.WriteFile(path+".done", nil, 0o600)
		marked.fire(t)
		if ids := marked.imports(t); len(ids) != 1 {
			t.Fatalf("a file with its ready marker was not claimed: %v", ids)
		}
		if _, err := os.Stat(path + ".done"); err == nil {
			t.Error("the ready marker was left in the inbox")
		}
	})
}

// A worker killed while it read a claimed file leaves it in processing/:
// once the claim has timed out, the next firing takes it over. A file whose
// import Redis lost is taken over as a recovery: its rows are looked up
// before they are sent.
func TestScheduledDeadClaimIsTakenOver(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second, ClaimTimeout: 10 * time.Second})
	ctx := context.Background()
	// The dead worker's claim: the file moved, its record written, its
	// lease (10s) run out.
	processing := filepath.Join(in.dir, jobs.ProcessingDir)
	os.MkdirAll(processing, 0o700)
	path := in.drop(t, "roster.csv", 4)
	claimed := filepath.Join(processing, "roster.csv")
	os.Rename(path, claimed)
	os.WriteFile(filepath.Join(processing, ".roster.csv.claim"), []byte(fmt.Sprintf(`{"claimed_at":%q}`, time.Now().Add(-time.Minute).Format(time.RFC3339))), 0o600)
	in.fire(t)
	ids := in.imports(t)
	if len(ids) != 1 {
		t.Fatalf("imports %v: the dead claim was not taken over", ids)
	}
	imp, _ := in.store.Import(ctx, ids[0])
	if imp.Recovery != nil || imp.SourcePath != claimed {
		t.Errorf("taken over as %+v, want a fresh import of %s", imp, claimed)
	}

	// Redis loses it; the claim is taken over again, as a recovery.
	in.rdb.FlushDB(ctx)
	in.fire(t)
	ids = in.imports(t)
	if len(ids) != 1 {
		t.Fatalf("imports %v after Redis lost the first", ids)
	}
	if imp, _ := in.store.Import(ctx, ids[0]); imp.Recovery == nil || imp.ID != ids[0] {
		t.Errorf("taken over as %+v, want the same import recovered", imp)
	}
}

// An import whose file grew after it was read ends in failed/ with a note:
// what was added was never read.
func TestScheduledFileThatGrewIsFiledAsFailed(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	ctx := context.Background()
	serve(t, in.rdb, in.h, 1, 10)
	in.drop(t, "roster.csv", 3)
	in.fire(t)
	ids := in.imports(t)
	if len(ids) != 1 {
		t.Fatalf("imports %v", ids)
	}
	imp, _ := in.store.Import(ctx, ids[0])
	f, _ := os.OpenFile(imp.SourcePath, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("Resident,Late,late@example.com\n")
	f.Close()
	waitFinished(t, in.store, ids[0], 20*time.Second)
	for deadline := time.Now().Add(5 * time.Second); len(in.files(jobs.FailedDir)) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	failed := in.files(jobs.FailedDir)
	if len(failed) != 2 {
		t.Fatalf("failed/ holds %v, want the file and its note", failed)
	}
	note, _ := os.ReadFile(filepath.Join(in.dir, jobs.FailedDir, "roster.csv.error.txt"))
	if !strings.Contains(string(note), "the file grew after it was read") {
		t.Errorf("note: %s", note)
	}
	if p, _ := in.store.Progress(ctx, ids[0]); p.Total != 3 {
		t.Errorf("%d rows imported, want the 3 read", p.Total)
	}
}

// A link in the inbox that points outside it is not followed.
func TestScheduledLinksOutsideTheInboxAreNotFollowed(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	outside := filepath.Join(t.TempDir(), "secret.csv")
	os.WriteFile(outside, []byte("First Name,Last Name\nEve,Outside\n"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(outside, old, old)
	if err := os.Symlink(outside, filepath.Join(in.dir, "link.csv")); err != nil {
		t.Fatal(err)
	}
	in.fire(t)
	if ids := in.imports(t); len(ids) != 0 {
		t.Errorf("a link to a file outside the inbox was imported: %v", ids)
	}
	if _, err := os.Lstat(filepath.Join(in.dir, "link.csv")); err != nil {
		t.Errorf("the link was moved: %v", err)
	}
}

// A scheduled import that stopped (the API rejected the key) is resumed
// at the next firing, and its file leaves processing/ when it ends.
func TestScheduledStoppedImportResumes(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	ctx := context.Background()
	in.drop(t, "roster.csv", 3)
	in.fire(t)
	id := in.imports(t)[0]
	if err := in.store.Stop(ctx, id, "the API rejected the credentials (401 unauthorized)"); err != nil {
		t.Fatal(err)
	}
	// The feed queued before the stop ends, seeing it.
	serve(t, in.rdb, in.h, 1, 10)
	in.waitQuiet(t, 10*time.Second, nil)
	in.fire(t)
	if imp, _ := in.store.Import(ctx, id); imp.Stopped != "" {
		t.Fatalf("still stopped: %q", imp.Stopped)
	}
	waitFinished(t, in.store, id, 20*time.Second)
	for deadline := time.Now().Add(5 * time.Second); len(in.files(jobs.DoneDir)) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if done := in.files(jobs.DoneDir); len(done) != 1 {
		t.Errorf("done/ holds %v, want the file", done)
	}
	if p, _ := in.store.Progress(ctx, id); p.Counts[importer.Succeeded] != 3 {
		t.Errorf("progress %+v", p)
	}
}

// Nothing in failed/ or done/ is overwritten: a second a.csv gets a name of
// its own. Every file in failed/ has its .error.txt: why it was refused, or
// the counts of its import and where the report is.
func TestScheduledFilesNeverOverwriteAndFailedOnesSayWhy(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	for _, content := range []string{"", "First Name,Last Name\n"} { // empty, then a header alone
		path := filepath.Join(in.dir, "a.csv")
		os.WriteFile(path, []byte(content), 0o600)
		old := time.Now().Add(-time.Hour)
		os.Chtimes(path, old, old)
		in.fire(t)
	}
	failed := in.files(jobs.FailedDir)
	var files, notes []string
	for _, f := range failed {
		if strings.HasSuffix(f, ".error.txt") {
			notes = append(notes, f)
		} else {
			files = append(files, f)
		}
	}
	if len(files) != 2 || len(notes) != 2 {
		t.Fatalf("failed/ holds %v: want both a.csv files, each with its .error.txt", failed)
	}
	for _, n := range notes {
		if b, _ := os.ReadFile(filepath.Join(in.dir, jobs.FailedDir, n)); !strings.Contains(string(b), "a.csv") {
			t.Errorf("%s says %q, not why the file was refused", n, b)
		}
	}

	// Imported with a row that did not succeed: its note counts.
	serve(t, in.rdb, in.h, 1, 4)
	path := filepath.Join(in.dir, "b.csv")
	os.WriteFile(path, []byte("First Name,Last Name,E-mail\nAda,Lovelace,ada@example.com\nBo,Li,not-an-email\n"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(path, old, old)
	in.fire(t)
	id := ""
	for _, i := range in.imports(t) {
		id = i
	}
	waitFinished(t, in.store, id, 20*time.Second)
	var note []byte
	for deadline := time.Now().Add(5 * time.Second); note == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		note, _ = os.ReadFile(filepath.Join(in.dir, jobs.FailedDir, "b.csv.error.txt"))
	}
	if !strings.Contains(string(note), "1 of 2 rows did not succeed") || !strings.Contains(string(note), id) {
		t.Errorf("b.csv's note: %q, want its counts and its import", note)
	}
}

// A schedule whose mapping is strict files a roster whose columns changed
// in failed/, saying which columns, and imports nothing of it.
func TestScheduledStrictMappingRefusesAChangedRoster(t *testing.T) {
	t.Parallel()
	m, err := importer.Mapping{Name: "roster.yaml", Strict: true, Columns: map[string]string{"First Name": "first_name", "Last Name": "last_name", "Mail": "email_1"}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second, Options: importer.Options{Mapping: &m}})
	in.drop(t, "roster.csv", 3) // its columns: First Name, Last Name, E-mail
	in.fire(t)
	if got := in.imports(t); len(got) != 0 {
		t.Errorf("imports %v of a refused roster", got)
	}
	note, _ := os.ReadFile(filepath.Join(in.dir, jobs.FailedDir, "roster.csv.error.txt"))
	if !strings.Contains(string(note), "it has columns the mapping does not name (E-mail); it lacks columns the mapping names (Mail)") {
		t.Errorf("failed/ note: %q (failed/ holds %v)", note, in.files(jobs.FailedDir))
	}
}

// A sync roster whose rows are mostly unchanged is a fine night: its file
// goes to done/ with no .error.txt, as its notification says (issue 22).
func TestScheduledSyncRosterWithUnchangedRowsIsDone(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	serve(t, in.rdb, in.h, 1, 4)
	seed(t, in.sandbox,
		`{"integration_id":"int_rentvine_demo","first_name":"Resident","last_name":"Number1","email_1":"r1@example.com"}`,
		`{"integration_id":"int_rentvine_demo","first_name":"Resident","last_name":"Number2","email_1":"r2@example.com"}`)
	in.drop(t, "roster.csv", 3) // 2 unchanged, 1 to create
	in.fire(t)
	id := in.imports(t)[0]
	waitFinished(t, in.store, id, 20*time.Second)
	for deadline := time.Now().Add(5 * time.Second); len(in.files(jobs.DoneDir))+len(in.files(jobs.FailedDir)) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	p, _ := in.store.Progress(context.Background(), id)
	if p.Counts[importer.Unchanged] != 2 || p.Counts[importer.Succeeded] != 1 {
		t.Fatalf("counts %v, want 2 unchanged and 1 succeeded", p.Counts)
	}
	if done, failed := in.files(jobs.DoneDir), in.files(jobs.FailedDir); len(done) != 1 || len(failed) != 0 {
		t.Errorf("done/ holds %v and failed/ %v: a night of unchanged rows is fine", done, failed)
	}
}

// A roster whose column the schedule's last import read is gone (phones
// under "Cell" now) goes to failed/, naming the column: a sync would leave
// every phone as it is without a word. allow_dropped_columns imports it
// (issue 22).
func TestScheduledRosterThatDroppedAColumnIsRefused(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second})
	serve(t, in.rdb, in.h, 1, 4)
	write := func(name, header string) {
		path := filepath.Join(in.dir, name)
		os.WriteFile(path, []byte(header+"\nAda,Lovelace,ada@example.com,+15550100\nBo,Li,bo@example.com,+15550101\n"), 0o600)
		old := time.Now().Add(-time.Hour)
		os.Chtimes(path, old, old)
	}
	write("night-1.csv", "First Name,Last Name,E-mail,Phone")
	in.fire(t)
	first := in.imports(t)
	if len(first) != 1 {
		t.Fatalf("imports %v after night 1", first)
	}
	waitFinished(t, in.store, first[0], 20*time.Second)

	write("night-2.csv", "First Name,Last Name,E-mail,Cell")
	in.fire(t)
	if got := in.imports(t); len(got) != 1 {
		t.Errorf("imports %v: night 2 was imported without its phones", got)
	}
	note, _ := os.ReadFile(filepath.Join(in.dir, jobs.FailedDir, "night-2.csv.error.txt"))
	if !strings.Contains(string(note), "night-2.csv lacks a column that the schedule's last import ("+first[0]+") read: Phone (phone_1)") ||
		!strings.Contains(string(note), "allow_dropped_columns: true") {
		t.Errorf("night 2's note: %q", note)
	}

	in.s.AllowDroppedColumns = true
	write("night-2b.csv", "First Name,Last Name,E-mail,Cell")
	in.fire(t)
	if got := in.imports(t); len(got) != 2 {
		t.Errorf("imports %v: allow_dropped_columns did not import the file", got)
	}
}

// A plan refused by its guard (max_creates) stops the import, its file
// kept; the next firing leaves it refused, never filed as "another file"
// (issue 22).
func TestScheduledRefusedPlanWaitsForApproval(t *testing.T) {
	t.Parallel()
	guard, err := importer.ParseGuard("10%")
	if err != nil {
		t.Fatal(err)
	}
	// (A mapping too: loaded at each firing, it is the same mapping.)
	m, err := importer.Mapping{Name: "roster.yaml", Columns: map[string]string{"E-mail": "email_1"}}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second, Options: importer.Options{MaxCreates: guard, Mapping: &m}})
	serve(t, in.rdb, in.h, 1, 4)
	in.drop(t, "roster.csv", 5)
	in.fire(t)
	ids := in.imports(t)
	if len(ids) != 1 {
		t.Fatalf("imports %v", ids)
	}
	ctx := context.Background()
	var imp importer.Import
	for deadline := time.Now().Add(10 * time.Second); imp.Stopped == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		imp, _ = in.store.Import(ctx, ids[0])
	}
	if !strings.Contains(imp.Stopped, "max_creates") {
		t.Fatalf("import %s: stopped %q, want the plan refused", ids[0], imp.Stopped)
	}
	refused := func() string {
		t.Helper()
		var imp importer.Import
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if imp, _ = in.store.Import(ctx, ids[0]); imp.Stopped != "" || imp.Finished() {
				break
			}
		}
		return imp.Stopped
	}
	if !strings.Contains(refused(), "max_creates") {
		t.Fatalf("import %s not refused by its plan", ids[0])
	}
	// The next firing plans it again (the PMS may have caught up), and
	// it is refused again: its file stays where it is.
	in.fire(t)
	if failed := in.files(jobs.FailedDir); len(failed) != 0 {
		t.Errorf("failed/ holds %v after the next firing", failed)
	}
	if stopped := refused(); !strings.Contains(stopped, "max_creates") || !strings.Contains(stopped, "importer approve "+ids[0]) {
		t.Errorf("after the next firing the import stopped with %q, want it refused again, saying how to approve it", stopped)
	}
	// Approved, the next firing writes it.
	if err := in.commands().Approve(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	in.fire(t)
	waitFinished(t, in.store, ids[0], 20*time.Second)
	if p, _ := in.store.Progress(ctx, ids[0]); p.Counts[importer.Succeeded] != 5 {
		t.Errorf("the approved import's counts %v, want 5 created", p.Counts)
	}
	if err := in.commands().Approve(ctx, ids[0]); err == nil {
		t.Error("a finished import was approved")
	}
}

// A scheduled roster whose rows failed for a reason a retry can mend (the
// PMS in maintenance) stays in processing/ while its retry is queued, and
// goes to done/ once the retry succeeds (issue 22).
func TestScheduledTransientFailuresAreFiledAfterTheirRetry(t *testing.T) {
	t.Parallel()
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second, RetryTransient: 2 * time.Second, Options: importer.Options{Mode: importer.ModeCreate}})
	one, zero := 1.0, 0.0
	in.sandbox.SetFaults(sandbox.Faults{FailureRate: &one})
	serve(t, in.rdb, in.h, 1, 4)
	in.drop(t, "roster.csv", 3)
	in.fire(t)
	id := in.imports(t)[0]
	waitFinished(t, in.store, id, 20*time.Second)
	in.sandbox.SetFaults(sandbox.Faults{FailureRate: &zero}) // the maintenance is over
	if failed := in.files(jobs.FailedDir); len(failed) != 0 {
		t.Errorf("failed/ holds %v while a retry is queued", failed)
	}
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if imp, _ := in.store.Import(ctx, id); imp.Round == 1 && imp.Finished() && len(in.files(jobs.DoneDir)) > 0 {
			break
		}
	}
	if p, _ := in.store.Progress(ctx, id); p.Counts[importer.Succeeded] != 3 {
		t.Fatalf("after the retry: %+v, want every row succeeded", p)
	}
	if done, failed := in.files(jobs.DoneDir), in.files(jobs.FailedDir); len(done) != 1 || len(failed) != 0 {
		t.Errorf("done/ %v, failed/ %v: want the roster in done/", done, failed)
	}
}
