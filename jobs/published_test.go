package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/internal/webhook"
	"github.com/propexo-importer/importer/jobs"
)

// This file holds the syncs that the published OpenAPI file judges: the
// sandbox follows the file (the read model has no rent terms, the PUT takes
// only its schema's fields, a filter compares as the file allows), and
// every request and answer of every test here is held to it (sandboxtest).

// fileEnv is an env whose workers serve, on a sandbox configured by cfg
// (the test's key and latency filled in), with jobs.Config jcfg.
func fileEnv(t *testing.T, cfg sandbox.Config, jcfg jobs.Config) *env {
	t.Helper()
	cfg.APIKey = apiKey
	if cfg.Latency == (sandbox.Latency{}) {
		cfg.Latency, _ = sandbox.ParseLatency("fixed:100ms")
	}
	sb, srv := sandboxtest.Serve(t, cfg)
	if cfg.Webhooks.URL != "" {
		sb.Start()
	}
	api, err := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	e := envWith(t, sb, api)
	jcfg.PollInitial, jcfg.PollMax = 200*time.Millisecond, time.Second
	e.h = jobs.NewImports(api, e.store, e.queue, e.reports, nil, jcfg)
	serve(t, e.rdb, e.h, 1, 8)
	return e
}

// pms reads a resident as the PMS holds it (rent terms included), from the
// sandbox's own view.
func (e *env) pms(t *testing.T, url, id string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/_sandbox/residents/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results map[string]any `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the PMS's resident %s: %d %v", id, resp.StatusCode, err)
	}
	return out.Results
}

// seed puts residents in the PMS and returns their ids.
func seed(t *testing.T, sb *sandbox.Server, records ...string) []string {
	t.Helper()
	ids, err := sb.SeedResidents(strings.NewReader("[" + strings.Join(records, ",") + "]"))
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// Rows of two integrations: a row of integration A whose email a resident
// of integration B has is A's own resident, created in A; B's resident is
// neither matched nor rewritten.
func TestRowsMatchOnlyTheirOwnIntegration(t *testing.T) {
	t.Parallel()
	e := fileEnv(t, sandbox.Config{RateLimit: -1, Integrations: map[string]string{"int_a": "rentvine", "int_b": "rentvine"}}, jobs.Config{})
	ids := seed(t, e.sandbox, `{"integration_id":"int_b","first_name":"Ada","last_name":"Byron","email_1":"ada@example.com"}`)
	path := writeCSV(t, "two-integrations.csv", "integration_id,first_name,last_name,email\n"+
		"int_a,Ada,Lovelace,ada@example.com\n"+
		"int_b,Bo,Diddley,bo@example.com\n")
	imp := e.importRoster(t, path, importer.Options{IntegrationID: "int_a"})
	got := e.outcomes(t, imp)
	if got[1].Outcome != importer.Succeeded || got[1].Action != importer.ActionCreate || got[1].RecordID == ids[0] {
		t.Errorf("int_a's Ada = %+v, want her created in int_a", got[1])
	}
	if got[2].Outcome != importer.Succeeded || got[2].Action != importer.ActionCreate {
		t.Errorf("int_b's Bo = %+v, want him created", got[2])
	}
	st := e.sandbox.Stats()
	if st.Updates != 0 || st.Creates != 2 {
		t.Errorf("%d updates and %d creates, want 0 and 2", st.Updates, st.Creates)
	}
	rec, err := e.api.GetResident(context.Background(), ids[0])
	if err != nil || rec.LastName != "Byron" {
		t.Errorf("int_b's Ada is %+v (%v): rewritten by a row of int_a", rec, err)
	}
	created, err := e.api.GetResident(context.Background(), got[1].RecordID)
	if err != nil || created.IntegrationID != "int_a" || created.LastName != "Lovelace" {
		t.Errorf("the created resident is %+v (%v), want int_a's Ada Lovelace", created, err)
	}
}

// rentManager are the options of a Rent Manager roster: its create requires
// the property and the rent terms, filled by the run's defaults.
var rentManager = importer.Options{Vendor: importer.VendorRentManager, IntegrationID: "int_rentmanager_demo", PropertyID: "prop_100",
	RentPeriod: "MONTHLY", RentDueDay: 1}

// A resident whose rent is due on the 5th is never given the run's
// --rent-due-day 1: the read model has no rent terms, so a sync neither
// compares nor sends them (on_create). Her changed phone is updated, and
// the update carries the phone only.
func TestTheRunsRentDefaultsNeverOverwriteAResident(t *testing.T) {
	t.Parallel()
	e := fileEnv(t, sandbox.Config{RateLimit: -1}, jobs.Config{})
	srvURL := sandboxURL(t, e)
	ids := seed(t, e.sandbox,
		`{"integration_id":"int_rentmanager_demo","property_id":"prop_100","first_name":"Ada","last_name":"Lovelace","email_1":"ada@example.com","phone_1":"5550100000","phone_1_type":"MOBILE","rent_period":"WEEKLY","rent_due_day":5}`,
		`{"integration_id":"int_rentmanager_demo","property_id":"prop_100","first_name":"Bo","last_name":"Diddley","email_1":"bo@example.com","rent_period":"MONTHLY","rent_due_day":5}`)
	path := writeCSV(t, "rm.csv", "first_name,last_name,email,phone,phone_type\n"+
		"Ada,Lovelace,ada@example.com,555-999-0000,MOBILE\n"+
		"Bo,Diddley,bo@example.com,,\n")
	imp := e.importRoster(t, path, rentManager)
	got := e.outcomes(t, imp)
	if got[1].Outcome != importer.Succeeded || got[1].Action != importer.ActionUpdate || got[2].Outcome != importer.Unchanged {
		t.Errorf("rows = %+v, want Ada's phone updated and Bo unchanged", got)
	}
	for i, id := range ids {
		if rec := e.pms(t, srvURL, id); rec["rent_due_day"] != float64(5) {
			t.Errorf("resident %d's rent is due on %v after the sync, want 5 as before", i+1, rec["rent_due_day"])
		}
	}
	if rec := e.pms(t, srvURL, ids[0]); rec["rent_period"] != "WEEKLY" || rec["phone_1"] != "555-999-0000" {
		t.Errorf("Ada in the PMS: %v, want WEEKLY kept and the new phone", rec)
	}
	if st := e.sandbox.Stats(); st.Updates != 1 || st.NoopUpdates != 0 || st.Creates != 0 {
		t.Errorf("%d updates (%d changing nothing), %d creates; want 1, 0, 0", st.Updates, st.NoopUpdates, st.Creates)
	}

	// A roster that carries the rent terms itself: written on a create
	// only, unless the mapping says otherwise.
	path = writeCSV(t, "rm-rent.csv", "first_name,last_name,email,phone,phone_type,rent_period,rent_due_day\n"+
		"Ada,Lovelace,ada@example.com,555-999-0000,MOBILE,MONTHLY,1\n")
	imp = e.importRoster(t, path, rentManager)
	if r := e.outcomes(t, imp)[1]; r.Outcome != importer.Unchanged {
		t.Errorf("the file's own rent terms: %+v, want unchanged", r)
	}
	if rec := e.pms(t, srvURL, ids[0]); rec["rent_due_day"] != float64(5) || rec["rent_period"] != "WEEKLY" {
		t.Errorf("Ada's rent after the file's own terms: %v %v, want WEEKLY on the 5th", rec["rent_period"], rec["rent_due_day"])
	}
	withPolicy := rentManager
	withPolicy.Mapping = &importer.Mapping{Write: map[string]importer.WritePolicy{"rent_due_day": importer.WriteUpdate}}
	imp = e.importRoster(t, path, withPolicy)
	if r := e.outcomes(t, imp)[1]; r.Outcome != importer.Succeeded || r.Action != importer.ActionUpdate {
		t.Errorf("rent_due_day: update in the mapping: %+v, want the update sent", r)
	}
	if rec := e.pms(t, srvURL, ids[0]); rec["rent_due_day"] != float64(1) || rec["rent_period"] != "WEEKLY" {
		t.Errorf("Ada's rent after the mapping's update: %v %v, want WEEKLY on the 1st", rec["rent_period"], rec["rent_due_day"])
	}
	// The next night's same terms: the ledger remembers what was sent of
	// a field no read shows, and nothing is sent again.
	updates := e.sandbox.Stats().Updates
	imp = e.importRoster(t, writeCSV(t, "rm-rent-2.csv", "first_name,last_name,email,phone,phone_type,rent_period,rent_due_day\n"+
		"Ada,Lovelace,ada@example.com,555-999-0000,MOBILE,MONTHLY,1\n"), withPolicy)
	if r := e.outcomes(t, imp)[1]; r.Outcome != importer.Unchanged || e.sandbox.Stats().Updates != updates {
		t.Errorf("the same rent terms the next night: %+v and %d updates, want unchanged and none", r, e.sandbox.Stats().Updates-updates)
	}
}

// sandboxURL is the address of an env's sandbox, found through its client.
func sandboxURL(t *testing.T, e *env) string {
	t.Helper()
	return strings.TrimSuffix(e.api.BaseURL(), "/")
}

// Night 2 of a Rent Manager roster with nothing changed (another order)
// sends no write: the rent terms, which no read shows, are not compared.
func TestASecondIdenticalNightSendsNothing(t *testing.T) {
	t.Parallel()
	e := fileEnv(t, sandbox.Config{RateLimit: -1}, jobs.Config{})
	people := roster(20)
	night1 := e.importRoster(t, writeRoster(t, "night-1.csv", people), rentManager)
	if got := countBy(e.outcomes(t, night1)); got["succeeded/create"] != 20 {
		t.Fatalf("night 1: %v", got)
	}
	before := e.sandbox.Stats()
	for i, j := 0, len(people)-1; i < j; i, j = i+1, j-1 {
		people[i], people[j] = people[j], people[i]
	}
	night2 := e.importRoster(t, writeRoster(t, "night-2.csv", people), rentManager)
	if got := countBy(e.outcomes(t, night2)); got["unchanged/none"] != 20 {
		t.Errorf("night 2: %v, want all 20 unchanged", got)
	}
	after := e.sandbox.Stats()
	if after.Creates != before.Creates || after.Updates != before.Updates {
		t.Errorf("night 2 sent %d creates and %d updates, want none", after.Creates-before.Creates, after.Updates-before.Updates)
	}
	if n := after.Requests["list_residents"] - before.Requests["list_residents"]; n != 1 {
		t.Errorf("night 2 sent %d listing requests, want 1 page", n)
	}
}

// A roster whose phones changed: every update is one the API accepts (the
// PUT's schema: no integration, property or lease; phone_1 with a type it
// takes; no null). A phone typed OTHER, which the PUT does not take for
// phone_1, is not sent, and the row says why.
func TestChangedPhonesSendOnlyUpdatesTheAPIAccepts(t *testing.T) {
	t.Parallel()
	e := fileEnv(t, sandbox.Config{RateLimit: -1}, jobs.Config{})
	people := roster(6)
	people[5].phoneType = "OTHER"
	e.importRoster(t, writeRoster(t, "night-1.csv", people), rentManager)
	for i := range people {
		people[i].phone = fmt.Sprintf("555-777-%04d", i)
	}
	people[1].phoneType = "home"
	imp := e.importRoster(t, writeRoster(t, "night-2.csv", people), rentManager)
	got := e.outcomes(t, imp)
	if c := countBy(got); c["succeeded/update"] != 5 || c["unchanged/none"] != 1 {
		t.Errorf("night 2: %v, want 5 updates and the OTHER one unchanged", c)
	}
	if r := got[6]; !strings.Contains(r.Error, `phone_1 not sent`) || !strings.Contains(r.Error, `"OTHER"`) {
		t.Errorf("the OTHER row says %q", r.Error)
	}
	for _, r := range got {
		if r.Outcome == importer.Failed {
			t.Errorf("row %d failed: %s", r.Row, r.Error)
		}
	}
	rec, err := e.api.GetResident(context.Background(), got[2].RecordID)
	if err != nil || rec.Phone1 != "555-777-0001" || rec.Phone1Type != "HOME" {
		t.Errorf("row 2's resident: %+v (%v)", rec, err)
	}
}

// A resident not seen in the PMS for over --stale-after (30 days) is no
// match: the row is created, and says whom it passed over; a gone
// resident the file does not have is not listed as missing.
func TestResidentsGoneFromThePMS(t *testing.T) {
	t.Parallel()
	e := fileEnv(t, sandbox.Config{RateLimit: -1}, jobs.Config{})
	old := time.Now().AddDate(0, 0, -40).UTC().Format(time.RFC3339)
	ids := seed(t, e.sandbox,
		fmt.Sprintf(`{"integration_id":"int_rentvine_demo","first_name":"Ada","last_name":"Lovelace","email_1":"ada@example.com","last_seen":%q}`, old),
		fmt.Sprintf(`{"integration_id":"int_rentvine_demo","first_name":"Gone","last_name":"Away","email_1":"gone@example.com","last_seen":%q}`, old),
		`{"integration_id":"int_rentvine_demo","first_name":"Still","last_name":"Here","email_1":"here@example.com"}`)
	path := writeCSV(t, "roster.csv", "first_name,last_name,email\nAda,Lovelace,ada@example.com\n")
	imp := e.importRoster(t, path, importer.Options{})
	r := e.outcomes(t, imp)[1]
	if r.Outcome != importer.Succeeded || r.Action != importer.ActionCreate || !strings.Contains(r.Error, ids[0]+", last seen") {
		t.Errorf("row 1 = %+v, want a create that names %s, gone", r, ids[0])
	}
	missing := *e.reports.missing.Load()
	if len(missing) != 1 || missing[0].ID != ids[2] {
		t.Errorf("missing = %+v, want only %s (the gone ones are not missing)", missing, ids[2])
	}
}

// With webhooks, an update is resolved by the DATA_UPDATE of its record
// read back, whichever job id it carries (the write's, or a sync's when
// the record holds what the update sent): no status read.
func TestUpdatesResolvedByDataUpdate(t *testing.T) {
	t.Parallel()
	for _, variant := range []string{sandbox.DataNewWrite, sandbox.DataNewSync} {
		t.Run(variant, func(t *testing.T) {
			var h atomic.Pointer[jobs.Imports]
			rc, err := webhook.NewReceiver(whSecret, func(ctx context.Context, ev importer.WriteEvent) error { return h.Load().ApplyEvent(ctx, ev) }, nil)
			if err != nil {
				t.Fatal(err)
			}
			hooks := httptest.NewServer(rc)
			t.Cleanup(hooks.Close)
			e := fileEnv(t, sandbox.Config{RateLimit: -1, Variants: sandbox.Variants{DataUpdate: variant},
				Webhooks: sandbox.WebhookConfig{URL: hooks.URL, Secret: whSecret}}, jobs.Config{PollFallback: time.Hour})
			h.Store(e.h)
			people := roster(5)
			e.importRoster(t, writeRoster(t, "night-1.csv", people), importer.Options{})
			for i := range people {
				people[i].notes += " (moved)"
			}
			reads := e.sandbox.Stats().Requests["write_status"]
			imp := e.importRoster(t, writeRoster(t, "night-2.csv", people), importer.Options{})
			if c := countBy(e.outcomes(t, imp)); c["succeeded/update"] != 5 {
				t.Errorf("night 2: %v, want 5 updates", c)
			}
			if n := e.sandbox.Stats().Requests["write_status"] - reads; n != 0 {
				t.Errorf("%d status reads, want none: DATA_UPDATE resolves each update", n)
			}
		})
	}
}

// A write the PMS refused for its data (a 4xx of its own) is not sent to
// retry-write: it would fail the same way. It is safe to send again once
// fixed (failed.csv has it).
func TestRetryLeavesWhatThePMSRefused(t *testing.T) {
	t.Parallel()
	e := fileEnv(t, sandbox.Config{RateLimit: -1}, jobs.Config{})
	opts := rentManager
	opts.PropertyID = "prop_999" // not in Rent Manager: the PMS refuses the create
	imp := e.importRoster(t, writeRoster(t, "roster.csv", roster(2)), opts)
	for _, r := range e.outcomes(t, imp) {
		if r.Outcome != importer.Failed || r.ErrorCode != importer.CodePMSRejected || !r.SafeToResend() {
			t.Errorf("row %d = %+v, want failed pms_rejected, safe to send again", r.Row, r)
		}
	}
	res, err := e.commands().Retry(context.Background(), imp.ID, jobs.RetryOptions{})
	if err != nil || res.Reopened != 0 {
		t.Errorf("retry: %+v, %v; want nothing retried", res, err)
	}
	if n := e.sandbox.Stats().Requests["retry_write"]; n != 0 {
		t.Errorf("%d retry-writes sent", n)
	}
}

// writeCSV writes a CSV file of the test's and returns its path.
func writeCSV(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Rows the API refuses all alike (a Rent Manager roster sent as generic,
// without the property Rent Manager requires) stop the import after the
// first RefusedAlikeLimit, instead of spending the budget on the rest
// (issue 22).
func TestWritesRefusedAlikeStopTheImport(t *testing.T) {
	t.Parallel()
	const rows = 60
	e := fileEnv(t, sandbox.Config{RateLimit: -1, Integrations: map[string]string{"int_rm": "rentmanager"}}, jobs.Config{})
	ctx := context.Background()
	imp := e.newImport(t, "imp-alike", -1, importer.Options{Mode: importer.ModeCreate})
	noProperty := func(n int, r *importer.Resident) { r.IntegrationID, r.PropertyID = "int_rm", "" }
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows, edit: noProperty}); err != nil {
		t.Fatal(err)
	}
	var got importer.Import
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got, _ = e.store.Import(ctx, "imp-alike"); got.Stopped != "" || got.Finished() {
			break
		}
	}
	if !strings.Contains(got.Stopped, "refused the first 20 writes all alike") || !strings.Contains(got.Stopped, "property_id") {
		t.Fatalf("import %q, stopped %q: want it stopped, naming the error", got.State(), got.Stopped)
	}
	e.waitQuiet(t, 20*time.Second, nil) // the writes in flight at the stop have ended
	if sent := e.sandbox.Stats().Requests["create_resident"]; sent >= rows/2 {
		t.Errorf("%d of %d creates sent: the import went on after its first 20 were refused alike", sent, rows)
	}
}
