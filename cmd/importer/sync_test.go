package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/redistest"
)

// The two nights of samples/, as the README shows them, with nothing
// configured: night 1 creates its 20 residents; plan shows night 2 without
// writing; night 2 creates the 2 new, updates the 3 changed, leaves 15
// unchanged and names the 2 gone in missing.csv. The in-process sandbox
// keeps its residents in the report folder between the commands.
func TestNightlyRosterSamples(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	night1 := runImporter(t, dir, nil, append([]string{"run", sample(t, "night-1.csv")}, fast...)...)
	if night1.code != 0 || !strings.Contains(night1.stdout, "20 succeeded") {
		t.Fatalf("night 1: exit %d\n%s\n%s", night1.code, night1.stdout, night1.stderr)
	}

	plan := runImporter(t, dir, nil, append([]string{"plan", sample(t, "night-2.csv")}, fast...)...)
	if plan.code != 0 || !strings.Contains(plan.stdout, "2 create, 3 update, 15 unchanged, 0 conflict, 0 not found, 0 invalid, 0 duplicate") ||
		!strings.Contains(plan.stdout, "against 20 residents listed; nothing was written") {
		t.Fatalf("plan of night 2: exit %d\n%s\n%s", plan.code, plan.stdout, plan.stderr)
	}
	planFile := strings.TrimSpace(plan.stdout[strings.Index(plan.stdout, "plan: ")+len("plan: "):])
	lines := readCSV(t, filepath.Join(dir, planFile))
	if len(lines) != 21 || !strings.Contains(strings.Join(lines[0], ","), "row,action,status,record_id,changes") {
		t.Errorf("plan.csv has %d lines, header %v", len(lines), lines[0])
	}
	changes := 0
	for _, l := range lines[1:] {
		if l[1] == "update" && strings.Contains(l[4], " → ") && strings.HasPrefix(l[3], "res_") {
			changes++
		}
	}
	if changes != 3 {
		t.Errorf("plan.csv shows %d updates with old → new values, want 3", changes)
	}
	refused := runImporter(t, dir, nil, "plan", "--max-creates", "1", sample(t, "night-2.csv"))
	if refused.code != 1 || !strings.Contains(refused.stdout, "run would refuse it: the plan would create 2 of 20 rows, more than max_creates allows (1)") {
		t.Errorf("plan past --max-creates: exit %d\n%s", refused.code, refused.stdout)
	}

	night2 := runImporter(t, dir, nil, append([]string{"run", sample(t, "night-2.csv")}, fast...)...)
	if night2.code != 0 || !strings.Contains(night2.stdout, "5 succeeded, 15 unchanged") ||
		!strings.Contains(night2.stdout, "upsert: 2 to create, 3 to update, 15 not to write") ||
		!strings.Contains(night2.stdout, "API requests: 2 creates, 3 updates, 0 retry-writes") {
		t.Fatalf("night 2: exit %d\n%s\n%s", night2.code, night2.stdout, night2.stderr)
	}
	report := reportDir(t, dir, night2)
	missing := readCSV(t, filepath.Join(report, "missing.csv"))
	if len(missing) != 3 {
		t.Errorf("missing.csv lists %d residents, want the 2 gone", len(missing)-1)
	}
	results := readCSV(t, filepath.Join(report, "results.csv"))
	actions := map[string]int{}
	for _, l := range results[1:] {
		actions[l[1]+"/"+l[2]]++
		if !strings.HasPrefix(l[4], "res_") {
			t.Errorf("results.csv row %s names no resident: %v", l[0], l[:7])
		}
	}
	if actions["succeeded/create"] != 2 || actions["succeeded/update"] != 3 || actions["unchanged/none"] != 15 {
		t.Errorf("results.csv: %v", actions)
	}
	state, err := os.ReadFile(filepath.Join(dir, "reports", ".sandbox-residents.json"))
	if err != nil || strings.Count(string(state), `"id":`) != 22 {
		t.Errorf("the in-process sandbox keeps %d residents after two nights of 20, 2 new, want 22 (%v)", strings.Count(string(state), `"id":`), err)
	}
}

// Both nights in one command, in order: the same outcome, and a guard that
// refuses the second night stops it before any write, with exit 3 and the
// plan written.
func TestRunTwoNightsInOneCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runImporter(t, dir, nil, append([]string{"run", sample(t, "night-1.csv"), sample(t, "night-2.csv")}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "20 succeeded") || !strings.Contains(r.stdout, "5 succeeded, 15 unchanged") ||
		!strings.Contains(r.stderr, "file 2 of 2") {
		t.Fatalf("two nights: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	other := t.TempDir()
	r = runImporter(t, other, nil, append([]string{"run", "--max-updates", "2", sample(t, "night-1.csv"), sample(t, "night-2.csv")}, fast...)...)
	if r.code != 3 || !strings.Contains(r.stderr, "the plan would update 3 of 20 rows, more than max_updates allows (2); nothing was written") ||
		!strings.Contains(r.stderr, "plan.csv") {
		t.Fatalf("night 2 past --max-updates: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// Cron's night whose roster is the same as an earlier night's — under the
// same name, written again, or a dated name — is a normal night: exit 0,
// nothing sent that is in place, no --again (issue 22).
func TestAnUnchangedNightExitsZero(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "nightly-key"
	addr := sandboxProcess(t, dir, key, "--latency", "uniform:200ms-1s", "--rate-limit", "6000")
	env := map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}
	fast := []string{"--poll-initial", "1s", "--rate-limit", "6000", "--integration-id", "int_rentvine_demo"}
	roster := filepath.Join(dir, "residents.csv")
	data, err := os.ReadFile(sample(t, "night-1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(roster, data, 0o600)
	night1 := runImporter(t, dir, env, append([]string{"run", roster}, fast...)...)
	if night1.code != 0 || !strings.Contains(night1.stdout, "20 succeeded") {
		t.Fatalf("night 1: exit %d\n%s\n%s", night1.code, night1.stdout, night1.stderr)
	}
	os.WriteFile(roster, data, 0o600) // the next night's export, the same
	night2 := runImporter(t, dir, env, append([]string{"run", roster}, fast...)...)
	if night2.code != 0 || !strings.Contains(night2.stdout, "20 unchanged") || !strings.Contains(night2.stdout, "API requests: 0 creates, 0 updates") {
		t.Errorf("night 2, the same roster: exit %d\n%s\n%s", night2.code, night2.stdout, night2.stderr)
	}
	dated := filepath.Join(dir, "residents-2026-12-07.csv")
	os.WriteFile(dated, data, 0o600)
	night3 := runImporter(t, dir, env, append([]string{"run", dated}, fast...)...)
	if night3.code != 0 || !strings.Contains(night3.stdout, "20 unchanged") {
		t.Errorf("night 3, the same roster under a dated name: exit %d\n%s\n%s", night3.code, night3.stdout, night3.stderr)
	}
}

// A plan whose rows would end unwritten (every one invalid, say) exits 1,
// as run would (issue 22).
func TestPlanOfBadRowsExitsOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("First Name,Last Name,E-mail\nAda,Lovelace,not-an-email\nBo,Li,also-not\n"), 0o600)
	r := runImporter(t, dir, nil, "plan", bad)
	if r.code != 1 || !strings.Contains(r.stdout, "0 create, 0 update, 0 unchanged, 0 conflict, 0 not found, 2 invalid") ||
		!strings.Contains(r.stdout, "2 rows of 2 would end unwritten; plan.csv says why") {
		t.Errorf("plan of invalid rows: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// A renamed column is named before anything is sent, by plan and by run:
// phones under "Cell" are not silently left out (issue 22).
func TestUnmappedColumnsAreNamedUpFront(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data, err := os.ReadFile(sample(t, "night-1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	roster := filepath.Join(dir, "renamed.csv")
	os.WriteFile(roster, []byte(strings.Replace(string(data), ",Phone,", ",Cell,", 1)), 0o600)
	want := "renamed.csv: the column Cell is no field of a resident: never sent (kept in the report); map it with --mapping to send it"
	plan := runImporter(t, dir, nil, "plan", roster)
	if !strings.Contains(plan.stdout, want) {
		t.Errorf("plan: exit %d\n%s\n%s", plan.code, plan.stdout, plan.stderr)
	}
	run := runImporter(t, dir, nil, append([]string{"run", roster}, fast...)...)
	if run.code != 0 || !strings.Contains(run.stderr, want) || strings.Index(run.stderr, want) > strings.Index(run.stderr, "rows resolved") {
		t.Errorf("run: exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}
}

// A plan refused by --max-creates waits for an operator: 'importer
// approve' lets it pass, and the same run again writes it (issue 22).
func TestApproveARefusedPlan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "approve-key"
	addr := sandboxProcess(t, dir, key, "--latency", "uniform:200ms-1s", "--rate-limit", "6000")
	env := map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}
	args := []string{"run", "--max-creates", "10%", "--poll-initial", "1s", "--rate-limit", "6000", sample(t, "night-1.csv")}
	refused := runImporter(t, dir, env, args...)
	if refused.code != 3 || !strings.Contains(refused.stderr, "the plan would create 20 of 20 rows") || !strings.Contains(refused.stderr, "importer approve ") {
		t.Fatalf("run past --max-creates: exit %d\n%s\n%s", refused.code, refused.stdout, refused.stderr)
	}
	id := regexp.MustCompile(`importer approve (\S+)'`).FindStringSubmatch(refused.stderr)[1]
	approved := runImporter(t, dir, env, "approve", id)
	if approved.code != 0 || !strings.Contains(approved.stdout, "import "+id+" approved") {
		t.Fatalf("approve: exit %d\n%s\n%s", approved.code, approved.stdout, approved.stderr)
	}
	again := runImporter(t, dir, env, args...)
	if again.code != 0 || !strings.Contains(again.stdout, "20 succeeded") {
		t.Errorf("the approved run: exit %d\n%s\n%s", again.code, again.stdout, again.stderr)
	}
	if done := runImporter(t, dir, env, "approve", id); done.code != 2 || !strings.Contains(done.stderr, "already finished") {
		t.Errorf("approve of a finished import: exit %d %s", done.code, done.stderr)
	}
}

// sandboxWrites counts the creates and updates a sandbox process accepted.
func sandboxWrites(t *testing.T, addr, key string) int {
	t.Helper()
	var stats struct{ Creates, Updates int }
	readSandboxStats(t, addr, key, &stats)
	return stats.Creates + stats.Updates
}

// Redis lost a finished import: status shows it finished, never "run the
// file again to recover it"; its file run again sends nothing (a newer
// night may have written since); delete forgets it (issue 22).
func TestAFinishedImportRedisLostIsNotSentAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rdb := redistest.Client(t)
	key := "lost-key"
	addr := sandboxProcess(t, dir, key, "--latency", "uniform:200ms-1s", "--rate-limit", "6000")
	env := map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}
	args := []string{"run", "--poll-initial", "1s", "--rate-limit", "6000", sample(t, "night-1.csv")}
	night1 := runImporter(t, dir, env, args...)
	if night1.code != 0 {
		t.Fatalf("night 1: exit %d\n%s\n%s", night1.code, night1.stdout, night1.stderr)
	}
	id := strings.Fields(night1.stdout)[1]
	id = strings.TrimSuffix(id, ":")
	// Night 2 changes 3 residents: night 1's roster sent again would
	// change them back.
	if night2 := runImporter(t, dir, env, "run", "--poll-initial", "1s", "--rate-limit", "6000", sample(t, "night-2.csv")); night2.code != 0 {
		t.Fatalf("night 2: exit %d\n%s\n%s", night2.code, night2.stdout, night2.stderr)
	}
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	writes := sandboxWrites(t, addr, key)

	st := runImporter(t, dir, env, "status")
	if !strings.Contains(st.stdout, id) || strings.Contains(st.stdout, "recover") || !strings.Contains(st.stdout, "finished") {
		t.Errorf("status after Redis lost a finished import:\n%s", st.stdout)
	}
	again := runImporter(t, dir, env, args...)
	if again.code != 0 || !strings.Contains(again.stderr, "it is not sent again") || !strings.Contains(again.stderr, "importer delete "+id) {
		t.Errorf("its file again: exit %d\n%s\n%s", again.code, again.stdout, again.stderr)
	}
	if n := sandboxWrites(t, addr, key); n != writes {
		t.Errorf("%d writes sent by running a finished import's file again", n-writes)
	}
	del := runImporter(t, dir, env, "delete", id)
	if del.code != 0 || !strings.Contains(del.stdout, "receipt of it is removed") {
		t.Errorf("delete: exit %d\n%s\n%s", del.code, del.stdout, del.stderr)
	}
	if st := runImporter(t, dir, env, "status"); strings.Contains(st.stdout, id) {
		t.Errorf("status after delete still lists %s:\n%s", id, st.stdout)
	}
}

// Without --vendor, the integration's vendor comes from the API: a Rent
// Manager roster without its rent terms is invalid in plan, before
// anything is sent, not 20 creates the API refuses (issue 22).
func TestTheVendorComesFromTheIntegration(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "vendor-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:100ms", "--rate-limit", "6000")
	env := map[string]string{"PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}
	roster := filepath.Join(dir, "rm.csv")
	os.WriteFile(roster, []byte("First Name,Last Name,E-mail\nAda,Lovelace,ada@example.com\nBo,Li,bo@example.com\n"), 0o600)
	plan := runImporter(t, dir, env, "plan", "--integration-id", "int_rentmanager_demo", roster)
	if plan.code != 1 || !strings.Contains(plan.stdout, "2 invalid") || !strings.Contains(plan.stdout, "2 rows of 2 would end unwritten") {
		t.Errorf("plan of a Rent Manager roster without rent terms: exit %d\n%s\n%s", plan.code, plan.stdout, plan.stderr)
	}
	planFile, _, _ := strings.Cut(plan.stdout[strings.Index(plan.stdout, "plan: ")+len("plan: "):], "\n")
	csv := readCSV(t, filepath.Join(dir, planFile))
	if len(csv) != 3 || !strings.Contains(strings.Join(csv[1], ","), "property_id") {
		t.Errorf("plan.csv does not say what is missing: %v", csv)
	}
	unknown := runImporter(t, dir, env, "plan", "--integration-id", "int_nobody", roster)
	if unknown.code != 2 || !strings.Contains(unknown.stderr, "lists no such integration") {
		t.Errorf("an integration the API does not list: exit %d\n%s", unknown.code, unknown.stderr)
	}

	// A run's summary counts every request the API saw from it: its
	// checks of the key, the vendor and the published limits too.
	os.WriteFile(roster, []byte("Property ID,First Name,Last Name,E-mail,Rent Period,Rent Due Day\n"+
		"prop_100,Ada,Lovelace,ada@example.com,monthly,1\nprop_100,Bo,Li,bo@example.com,monthly,1\n"), 0o600)
	var before, after struct{ Requests map[string]int }
	readSandboxStats(t, addr, key, &before)
	run := runImporter(t, dir, env, append([]string{"run", "--integration-id", "int_rentmanager_demo", roster}, fast...)...)
	readSandboxStats(t, addr, key, &after)
	if run.code != 0 || !strings.Contains(run.stdout, "2 succeeded") {
		t.Fatalf("run of the roster with its rent terms: exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	var summary struct {
		Requests map[string]int `json:"api_requests"`
	}
	b, _ := os.ReadFile(filepath.Join(reportDir(t, dir, run), "summary.json"))
	if err := json.Unmarshal(b, &summary); err != nil {
		t.Fatalf("summary.json: %v\n%s", err, b)
	}
	sent, seen := 0, 0
	for _, n := range summary.Requests {
		sent += n
	}
	for _, n := range after.Requests {
		seen += n
	}
	for _, n := range before.Requests {
		seen -= n
	}
	if sent != seen || summary.Requests["api_check"] == 0 {
		t.Errorf("the summary counts %d requests (%v), the API saw %d (before %v, after %v)", sent, summary.Requests, seen, before.Requests, after.Requests)
	}
}
