package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/notify"
	"github.com/propexo-importer/importer/internal/notifytest"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/internal/source"
	"github.com/propexo-importer/importer/jobs"
)

// person is one resident of a test roster: a PMS's export has the
// resident's id (x_id) and its property's (x_property_id), the phone's
// type, notes.
type person struct {
	first, last, email, dob, phone, phoneType, xid, property, xProperty, notes string
}

func roster(n int) []person {
	out := make([]person, n)
	for i := range out {
		out[i] = person{first: "Ada", last: fmt.Sprintf("Number%d", i), email: fmt.Sprintf("ada%d@example.com", i),
			dob: fmt.Sprintf("1980-01-%02d", i%28+1), phone: fmt.Sprintf("555-010-%04d", i), phoneType: "MOBILE", notes: fmt.Sprintf("Tenant %d", i)}
	}
	return out
}

// writeRoster writes a roster as a CSV file and returns its path.
func writeRoster(t *testing.T, name string, people []person) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("x_id,x_property_id,property_id,first_name,last_name,email,date_of_birth,phone,phone_type,notes\n")
	for _, p := range people {
		fmt.Fprintf(&b, "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", p.xid, p.xProperty, p.property, p.first, p.last, p.email, p.dob, p.phone, p.phoneType, p.notes)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncEnv is an env whose workers serve, on a sandbox with the given cache
// lag.
func syncEnv(t *testing.T, cacheLag time.Duration) *env {
	t.Helper()
	lat, _ := sandbox.ParseLatency("fixed:100ms")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, CacheLag: importer.CacheLag{Default: cacheLag}})
	api, err := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	e := envWith(t, sb, api)
	serve(t, e.rdb, e.h, 1, 8)
	return e
}

// envWith is an env on a Redis of its own and the given sandbox, with no
// workers serving.
func envWith(t *testing.T, sb *sandbox.Server, api *propexo.Client) *env {
	e := envOn(t, redistestClient(t))
	e.sandbox, e.api = sb, api
	e.h = jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: 200 * time.Millisecond, PollMax: time.Second,
		Sender: notify.Sender{Secret: notifySecret}})
	return e
}

// importRoster imports a roster file with opts (integration
// int_rentvine_demo unless opts say otherwise), waits for its report, and
// returns the import.
func (e *env) importRoster(t *testing.T, path string, opts importer.Options) importer.Import {
	t.Helper()
	ctx := context.Background()
	if opts.IntegrationID == "" {
		opts.IntegrationID = "int_rentvine_demo"
	}
	opts.Format = "csv"
	opts, err := opts.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	f, err := jobs.Inspect(ctx, jobs.Input{Path: path, Shown: path, Name: filepath.Base(path), Options: opts, Limits: importer.DefaultLimits})
	if err != nil {
		t.Fatal(err)
	}
	started, err := e.h.Start(ctx, jobs.StartRequest{File: f})
	if err != nil {
		t.Fatal(err)
	}
	waitFinished(t, e.store, started.Import.ID, 30*time.Second)
	imp, err := e.store.Import(ctx, started.Import.ID)
	if err != nil {
		t.Fatal(err)
	}
	return imp
}

// outcomes returns each row's outcome and action, by row number.
func (e *env) outcomes(t *testing.T, imp importer.Import) map[int]importer.RowResult {
	t.Helper()
	out := map[int]importer.RowResult{}
	for r, err := range e.store.Rows(context.Background(), imp.ID, imp.Total) {
		if err != nil {
			t.Fatal(err)
		}
		out[r.Result.Row] = r.Result
	}
	return out
}

func countBy(results map[int]importer.RowResult) map[string]int {
	out := map[string]int{}
	for _, r := range results {
		out[string(r.Outcome)+"/"+string(r.Action)]++
	}
	return out
}

func noResidentTwice(t *testing.T, sb *sandbox.Server) {
	t.Helper()
	for who, n := range sb.Stats().ResidentsByIdentity {
		if n > 1 {
			t.Errorf("%s was created %d times", who, n)
		}
	}
}

// The nightly roster: night 2 has the same residents in another order,
// two changed, one new and one gone. It creates the new one, updates the
// two changed (only the fields that changed), leaves the rest unchanged,
// and lists the gone one as missing: nobody is created twice, and no
// update changes nothing.
func TestNightlyRosterCreatesNobodyTwice(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, 0)
	night1 := roster(12)
	imp1 := e.importRoster(t, writeRoster(t, "night-1.csv", night1), importer.Options{})
	if got := countBy(e.outcomes(t, imp1)); got["succeeded/create"] != 12 {
		t.Fatalf("night 1: %v, want 12 created", got)
	}

	night2 := slices.Clone(night1[1:]) // resident 0 is gone
	slices.Reverse(night2)
	night2[0].phone = "555-999-0000"            // changed
	night2[5].last = night2[5].last + "-Smythe" // changed, matched by email
	night2 = append(night2, person{first: "New", last: "Comer", email: "new@example.com", dob: "1990-05-05", phone: "555-123-4567"})
	creates, reqs := e.sandbox.Stats().Creates, e.sandbox.Stats().Requests
	lists, statusReads := reqs["list_residents"], reqs["write_status"]
	imp2 := e.importRoster(t, writeRoster(t, "night-2.csv", night2), importer.Options{})

	got := countBy(e.outcomes(t, imp2))
	want := map[string]int{"succeeded/create": 1, "succeeded/update": 2, "unchanged/none": 9}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("night 2: %v, want %v", got, want)
	}
	st := e.sandbox.Stats()
	if st.Creates-creates != 1 || st.Updates != 2 || st.NoopUpdates != 0 {
		t.Errorf("night 2 sent %d creates and %d updates (%d changing nothing); want 1, 2 and 0", st.Creates-creates, st.Updates, st.NoopUpdates)
	}
	if n := st.Requests["list_residents"] - lists; n != 1 {
		t.Errorf("night 2 listed %d pages; 12 residents fit in one", n)
	}
	if n := st.Requests["write_status"] - statusReads; n < 3 {
		t.Errorf("night 2 read %d write statuses for its 3 writes", n)
	}
	noResidentTwice(t, e.sandbox)
	missing := *e.reports.missing.Load()
	if len(missing) != 1 || missing[0].Email1 != night1[0].email {
		t.Errorf("missing = %+v, want only %s", missing, night1[0].email)
	}
	sum, err := e.store.Summary(context.Background(), imp2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.AllSucceeded() || sum.Actions[importer.ActionCreate] != 1 || sum.Actions[importer.ActionUpdate] != 2 || sum.Actions[importer.ActionNone] != 9 {
		t.Errorf("summary: all succeeded %v, actions %v", sum.AllSucceeded(), sum.Actions)
	}
	// The update sent the changed phone, with its type's company kept
	// out: only what changed (and what the vendor requires) is sent.
	for _, r := range e.outcomes(t, imp2) {
		if r.Action == importer.ActionUpdate && r.RecordID == "" {
			t.Errorf("row %d was updated but names no resident", r.Row)
		}
	}
}

// Each mode does what it says with matched and unmatched rows.
func TestModes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		mode importer.Mode
		want map[string]int
		// creates is how many residents night 2 creates.
		creates int
	}{
		{importer.ModeUpsert, map[string]int{"succeeded/create": 1, "succeeded/update": 1, "unchanged/none": 2}, 1},
		{importer.ModeCreateMissing, map[string]int{"succeeded/create": 1, "unchanged/none": 3}, 1},
		{importer.ModeUpdate, map[string]int{"not_found/none": 1, "succeeded/update": 1, "unchanged/none": 2}, 0},
		{importer.ModeCreate, map[string]int{"succeeded/create": 4}, 4},
	} {
		t.Run(string(tt.mode), func(t *testing.T) {
			e := syncEnv(t, 0)
			people := roster(3)
			e.importRoster(t, writeRoster(t, "night-1.csv", people), importer.Options{})
			people[1].phone = "555-777-0001"
			people = append(people, person{first: "New", last: "Comer", email: "new@example.com", dob: "1990-05-05", phone: "555-123-4567"})
			before := e.sandbox.Stats().Creates
			imp := e.importRoster(t, writeRoster(t, "night-2.csv", people), importer.Options{Mode: tt.mode})
			if got := countBy(e.outcomes(t, imp)); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("%s: %v, want %v", tt.mode, got, tt.want)
			}
			if got := e.sandbox.Stats().Creates - before; got != tt.creates {
				t.Errorf("%s created %d residents, want %d", tt.mode, got, tt.creates)
			}
		})
	}
}

// A row is matched on the first key it has, in --match-on's order: x_id,
// email in any case, name with date of birth. A key that matches two
// residents is a conflict naming both; nothing is guessed or written.
func TestMatchKeysAndConflicts(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, 0)
	people := []person{
		{first: "Ada", last: "Lovelace", email: "ada@example.com", dob: "1985-12-10"},
		{first: "Bo", last: "Diddley", email: "", dob: "1928-12-30"},
		{first: "Cy", last: "Young", email: "cy@example.com", dob: "1967-03-29"},
		{first: "Twin", last: "One", email: "twins@example.com", dob: "2000-01-01"},
		{first: "Twin", last: "Two", email: "twins@example.com", dob: "2000-01-01"},
	}
	imp1 := e.importRoster(t, writeRoster(t, "night-1.csv", people), importer.Options{Mode: importer.ModeCreate})
	ids := map[string]string{}
	for _, r := range e.outcomes(t, imp1) {
		ids[people[r.Row-1].first+people[r.Row-1].last] = r.RecordID
	}
	cy, err := e.api.GetResident(context.Background(), ids["CyYoung"])
	if err != nil {
		t.Fatalf("%v (ids %v; %+v)", err, ids, e.outcomes(t, imp1))
	}

	night2 := []person{
		{first: "Ada", last: "Lovelace", email: "ADA@Example.com", dob: "1985-12-10"}, // email, any case
		{first: "bo", last: " diddley", dob: "1928-12-30"},                            // name+dob, names folded
		{xid: cy.XID, first: "Cy", last: "Young", email: "cy.young@example.com", dob: "1967-03-29"},
		{first: "Twin", last: "Three", email: "twins@example.com", dob: "2000-01-01"}, // two residents have it
	}
	creates := e.sandbox.Stats().Creates
	imp2 := e.importRoster(t, writeRoster(t, "night-2.csv", night2), importer.Options{})
	got := e.outcomes(t, imp2)
	if got[1].Outcome != importer.Unchanged || got[1].RecordID != ids["AdaLovelace"] {
		t.Errorf("row 1 (email in another case) = %+v, want unchanged %s", got[1], ids["AdaLovelace"])
	}
	if got[2].Outcome != importer.Succeeded || got[2].Action != importer.ActionUpdate || got[2].RecordID != ids["BoDiddley"] {
		// The names differ in case only: a sync sends what the file says.
		t.Errorf("row 2 (name+dob) = %+v, want an update of %s", got[2], ids["BoDiddley"])
	}
	if got[3].Action != importer.ActionUpdate || got[3].RecordID != ids["CyYoung"] {
		t.Errorf("row 3 (x_id, new email) = %+v, want an update of %s", got[3], ids["CyYoung"])
	}
	if got[4].Outcome != importer.Conflict || !strings.Contains(got[4].Error, ids["TwinOne"]) || !strings.Contains(got[4].Error, ids["TwinTwo"]) {
		t.Errorf("row 4 (a key of two residents) = %+v, want a conflict naming both", got[4])
	}
	if n := e.sandbox.Stats().Creates - creates; n != 0 {
		t.Errorf("night 2 created %d residents; every row matched someone", n)
	}
	if rec, _ := e.api.GetResident(context.Background(), ids["CyYoung"]); rec.Email1 != "cy.young@example.com" {
		t.Errorf("Cy's email is %q after the update", rec.Email1)
	}
}

// The API's cache lags the PMS longer than the gap between two nights: the
// listing does not show last night's residents yet. The ledger does: the
// returning residents are unchanged, the changed one is updated, and
// nobody is created twice.
func TestLedgerCoversTheCacheLag(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, time.Hour)
	people := roster(5)
	e.importRoster(t, writeRoster(t, "night-1.csv", people), importer.Options{})
	if recs, _, _, err := e.api.ListResidents(context.Background(), importer.ListScope{IntegrationID: "int_rentvine_demo"}, 0); err != nil || len(recs) != 0 {
		t.Fatalf("the sandbox lists %d residents within its cache lag (%v); want none", len(recs), err)
	}
	people[2].phone = "555-321-0000"
	imp := e.importRoster(t, writeRoster(t, "night-2.csv", people), importer.Options{})
	if got := countBy(e.outcomes(t, imp)); got["unchanged/none"] != 4 || got["succeeded/update"] != 1 {
		t.Errorf("night 2 within the cache lag: %v, want 4 unchanged and 1 update", got)
	}
	noResidentTwice(t, e.sandbox)
	if st := e.sandbox.Stats(); st.Creates != 5 {
		t.Errorf("%d creates in two nights of 5 residents", st.Creates)
	}
}

// --max-creates stops an import whose plan creates more rows than it
// allows, before anything is written: a renamed key column must not turn
// a roster into creates; its targets hear plan_refused. A re-run with a
// higher guard resumes it, and they hear it succeeded.
func TestGuardStopsBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, 0)
	ctx := context.Background()
	rx := notifytest.NewReceiver(t, notifySecret, notify.SignatureHeader)
	target, _ := notify.Parse(rx.URL + "/hook")
	e.store.SaveNotifyTarget(ctx, target.ID(), target.Address())
	targets := []importer.NotifyTarget{target.Ref()}
	path := writeRoster(t, "roster.csv", roster(4))
	opts, _ := importer.Options{IntegrationID: "int_rentvine_demo", Format: "csv", MaxCreates: importer.Guard{N: 50, Percent: true}}.Normalize()
	f, err := jobs.Inspect(ctx, jobs.Input{Path: path, Shown: path, Name: "roster.csv", Options: opts, Limits: importer.DefaultLimits})
	if err != nil {
		t.Fatal(err)
	}
	started, err := e.h.Start(ctx, jobs.StartRequest{File: f, Notify: targets})
	if err != nil {
		t.Fatal(err)
	}
	var imp importer.Import
	for deadline := time.Now().Add(10 * time.Second); imp.Stopped == ""; time.Sleep(50 * time.Millisecond) {
		if imp, err = e.store.Import(ctx, started.Import.ID); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the import was not stopped by its guard")
		}
	}
	if !strings.Contains(imp.Stopped, "create 4 of 4 rows, more than max_creates allows (50%)") {
		t.Errorf("stopped because %q", imp.Stopped)
	}
	e.waitQuiet(t, 20*time.Second, nil)
	if st := e.sandbox.Stats(); st.Creates != 0 || st.Updates != 0 {
		t.Errorf("a refused plan wrote %d creates and %d updates", st.Creates, st.Updates)
	}

	opts.MaxCreates = importer.Guard{N: 4}
	f.Options = opts
	again, err := e.h.Start(ctx, jobs.StartRequest{File: f})
	if err != nil || again.Resumed == "" {
		t.Fatalf("re-run with a higher guard: %+v, %v", again, err)
	}
	waitFinished(t, e.store, started.Import.ID, 30*time.Second)
	if st := e.sandbox.Stats(); st.Creates != 4 {
		t.Errorf("%d creates after the guard was raised, want 4", st.Creates)
	}
	waitFor(t, 10*time.Second, "the events did not arrive", func() bool { return len(rx.Deliveries()) == 2 })
	var kinds []importer.EventKind
	for _, d := range rx.Deliveries() {
		var ev importer.Event
		json.Unmarshal(d.Body, &ev)
		kinds = append(kinds, ev.Kind)
		if ev.Kind == importer.EventPlanRefused && !strings.Contains(ev.Reason, "more than max_creates allows (50%)") {
			t.Errorf("plan_refused says %q", ev.Reason)
		}
	}
	if len(kinds) != 2 || kinds[0] != importer.EventPlanRefused || kinds[1] != importer.EventSucceeded {
		t.Errorf("events %v, want plan_refused, then succeeded", kinds)
	}
}

// A worker killed between an update's plan and its answer: the row is left
// "sending". Its next delivery sends the same update again (harmless: the
// API changes nothing the second time) and never turns it into a create.
func TestAnUpdateInDoubtIsSentAgainNeverCreated(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, 0)
	ctx := context.Background()
	people := roster(1)
	imp1 := e.importRoster(t, writeRoster(t, "night-1.csv", people), importer.Options{})
	id := e.outcomes(t, imp1)[1].RecordID

	// Night 2 on a Redis of its own, planned by hand (no workers yet);
	// then its submit dies after marking the row as being sent.
	people[0].phone = "555-444-0000"
	night1 := e
	e = envWith(t, night1.sandbox, night1.api)
	imp := e.newImport(t, "imp-night-2", -1, importer.Options{IntegrationID: "int_rentvine_demo", Format: "csv"})
	rows, err := source.OpenFile(writeRoster(t, "night-2.csv", people), "csv", 0, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if _, err := e.commands().Split(ctx, imp, rows); err != nil {
		t.Fatal(err)
	}
	imp, _ = e.store.Import(ctx, imp.ID)
	fs, _ := e.store.Feed(ctx, imp.ID)
	if err := e.h.Plan(ctx, jobs.PlanPayload{ImportID: imp.ID, Gen: fs.Gen}); err != nil {
		t.Fatal(err)
	}
	plans, _ := e.store.Plans(ctx, imp.ID, []int{1})
	u := plans[1]
	e.send(t, imp.ID, 1)
	creates := e.sandbox.Stats().Creates
	p := jobs.SubmitPayload{ImportID: imp.ID, Row: 1, Line: 2, Vendor: importer.VendorGeneric, Update: &u}
	task, _, err := jobs.NewSubmitTask(p, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	serve(t, e.rdb, e.h, 1, 4) // the feed, the check, the report
	waitFinished(t, e.store, imp.ID, 30*time.Second)
	if plans[1].RecordID != id {
		t.Fatalf("the plan updates %q, want %s", plans[1].RecordID, id)
	}
	if st := e.sandbox.Stats(); st.Creates != creates || st.Updates < 1 {
		t.Errorf("the update in doubt made %d creates and %d updates; want 0 creates", st.Creates-creates, st.Updates)
	}
	if r := e.outcomes(t, imp)[1]; r.Outcome != importer.Succeeded || r.Action != importer.ActionUpdate || r.RecordID != id {
		t.Errorf("row 1 = %+v, want the update of %s succeeded", r, id)
	}
}

// Two rows of one file with the same key are one resident: the first is
// written, the second is a duplicate naming it, so nobody is created twice
// even when the two rows differ elsewhere.
func TestRowsWithTheSameKeyAreDuplicates(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, 0)
	people := []person{
		{first: "Ada", last: "Lovelace", email: "ada@example.com", phone: "555-010-0001"},
		{first: "Ada", last: "Lovelace", email: "ADA@example.com", phone: "555-010-0002"},
	}
	imp := e.importRoster(t, writeRoster(t, "roster.csv", people), importer.Options{})
	got := e.outcomes(t, imp)
	if got[1].Outcome != importer.Succeeded || got[2].Outcome != importer.Duplicate || !strings.Contains(got[2].Error, "the same email_1 as row 1") {
		t.Errorf("rows = %+v", got)
	}
	noResidentTwice(t, e.sandbox)
	if n := e.sandbox.Stats().Creates; n != 1 {
		t.Errorf("%d creates for one resident", n)
	}
}

// A small file against a big integration: the first page's total tells
// that looking each row's key up (x_id= with its x_property_id=, which the
// API needs beside it) costs fewer requests than listing every page, so
// the plan does that. A row keyed by email needs the whole listing (the
// email_1= filter may compare exactly, and would miss a resident written
// in another case), as one keyed by name+dob does. Each finds the
// resident; none creates it again.
func TestLookUpsWhenCheaperThanTheListing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		row   person
		lists int
	}{
		{"by x_id in its property: the first page and one look-up", person{xid: "100007", xProperty: "500", property: "prop_500", first: "Ada", last: "Number7", phone: "555-999-0007", phoneType: "HOME"}, 2},
		{"by email: every page", person{property: "prop_500", first: "Ada", last: "Number7", email: "ADA7@example.com", phone: "555-999-0007", phoneType: "HOME"}, 4},
		{"by name and birth date: every page", person{property: "prop_500", first: "Ada", last: "Number7", dob: "1980-01-08", phone: "555-999-0007", phoneType: "HOME"}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := syncEnv(t, 0)
			var seed strings.Builder
			seed.WriteString("[")
			for i := range 1000 {
				if i > 0 {
					seed.WriteString(",")
				}
				fmt.Fprintf(&seed, `{"id":"res_%d","x_id":"%d","integration_id":"int_rentvine_demo","property_id":"prop_500","first_name":"Ada","last_name":"Number%d","email_1":"ada%d@example.com","date_of_birth":"1980-01-%02dT00:00:00Z","phone_1":"555-010-%04d","phone_1_type":"MOBILE","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`,
					i, 100000+i, i, i, i%28+1, i)
			}
			seed.WriteString("]")
			if err := e.sandbox.LoadResidents(strings.NewReader(seed.String())); err != nil {
				t.Fatal(err)
			}
			imp := e.importRoster(t, writeRoster(t, "one.csv", []person{tt.row}), importer.Options{})
			st := e.sandbox.Stats()
			if got := e.outcomes(t, imp)[1]; got.Action != importer.ActionUpdate || got.RecordID != "res_7" {
				t.Errorf("row 1 = %+v, want an update of res_7", got)
			}
			if st.Requests["list_residents"] != tt.lists || st.Creates != 0 {
				t.Errorf("%d listing requests and %d creates; want %d and 0", st.Requests["list_residents"], st.Creates, tt.lists)
			}
		})
	}
}

// An empty cell erases nothing, unless --blank-clears: then the resident's
// value is cleared (sent as an empty string, which the PUT's schema takes
// for a plain text field), and the next night finds it unchanged.
func TestBlankClears(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, 0)
	people := roster(2)
	imp1 := e.importRoster(t, writeRoster(t, "night-1.csv", people), importer.Options{})
	id := e.outcomes(t, imp1)[1].RecordID
	people[0].notes = ""
	without := e.importRoster(t, writeRoster(t, "night-2.csv", people), importer.Options{})
	if got := countBy(e.outcomes(t, without)); got["unchanged/none"] != 2 {
		t.Errorf("an empty phone without --blank-clears: %v, want both unchanged", got)
	}
	with := e.importRoster(t, writeRoster(t, "night-2-clears.csv", people), importer.Options{BlankClears: true})
	if got := countBy(e.outcomes(t, with)); got["succeeded/update"] != 1 || got["unchanged/none"] != 1 {
		t.Errorf("an empty phone with --blank-clears: %v, want 1 update", got)
	}
	if rec, err := e.api.GetResident(context.Background(), id); err != nil || rec.Notes != "" {
		t.Errorf("resident %s has notes %q after the clear (%v)", id, rec.Notes, err)
	}
	slices.Reverse(people) // another file, the same residents
	again := e.importRoster(t, writeRoster(t, "night-3.csv", people), importer.Options{BlankClears: true})
	if got := countBy(e.outcomes(t, again)); got["unchanged/none"] != 2 {
		t.Errorf("the same file again: %v, want both unchanged", got)
	}
}

// An update the PMS refused is tried again by 'importer retry' through the
// API's retry-write: the same resident is updated, and nobody is created.
func TestRetryOfAFailedUpdate(t *testing.T) {
	t.Parallel()
	e := syncEnv(t, 0)
	ctx := context.Background()
	people := roster(2)
	imp1 := e.importRoster(t, writeRoster(t, "night-1.csv", people), importer.Options{})
	id := e.outcomes(t, imp1)[1].RecordID

	one := 1.0
	e.sandbox.SetFaults(sandbox.Faults{FailureRate: &one})
	people[0].phone = "555-321-0001"
	imp := e.importRoster(t, writeRoster(t, "night-2.csv", people), importer.Options{})
	if r := e.outcomes(t, imp)[1]; r.Outcome != importer.Failed || r.Action != importer.ActionUpdate || r.JobID == "" {
		t.Fatalf("the refused update: %+v", r)
	}
	zero := 0.0
	e.sandbox.SetFaults(sandbox.Faults{FailureRate: &zero})
	creates := e.sandbox.Stats().Creates
	if res, err := e.commands().Retry(ctx, imp.ID, jobs.RetryOptions{}); err != nil || res.Reopened != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	waitFinished(t, e.store, imp.ID, 30*time.Second)
	if r := e.outcomes(t, imp)[1]; r.Outcome != importer.Succeeded || r.Action != importer.ActionUpdate || r.RecordID != id {
		t.Errorf("after the retry: %+v, want the update of %s", r, id)
	}
	if rec, _ := e.api.GetResident(ctx, id); rec.Phone1 != "555-321-0001" {
		t.Errorf("resident %s has phone %q after the retried update", id, rec.Phone1)
	}
	if n := e.sandbox.Stats().Creates - creates; n != 0 {
		t.Errorf("the retry created %d residents", n)
	}
	noResidentTwice(t, e.sandbox)
}
