package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/redistest"
)

func TestRunSampleWithNothingConfigured(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runImporter(t, dir, nil, append([]string{"run", sample(t, "residents.csv")}, fast...)...)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "in-process Redis") || !strings.Contains(r.stderr, "in-process sandbox") {
		t.Errorf("run did not say it uses the in-process Redis and sandbox:\n%s", r.stderr)
	}
	results := readCSV(t, filepath.Join(reportDir(t, dir, r), "results.csv"))
	if len(results) != 51 {
		t.Fatalf("results.csv has %d rows, want 50", len(results)-1)
	}
	for i, line := range results[1:] {
		if line[0] != fmt.Sprint(i+1) || line[1] != "succeeded" || line[2] != "create" || !strings.HasPrefix(line[3], "job_") || !strings.HasPrefix(line[4], "res_") {
			t.Errorf("results line %d = %q, want row %d succeeded with a job id and a record id", i+1, line[:6], i+1)
		}
	}
	if !strings.Contains(r.stdout, "50 succeeded") || !strings.Contains(r.stdout, "Move-in Date") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	info, err := os.Stat(filepath.Join(reportDir(t, dir, r), "results.csv"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("results.csv mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

func TestRunJSONAndNDJSONSamples(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"residents.json", "residents.ndjson"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			r := runImporter(t, dir, nil, append([]string{"run", sample(t, name)}, fast...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "12 succeeded") {
				t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestRunSampleWithErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := runImporter(t, dir, nil, append([]string{"run", sample(t, "residents-with-errors.csv")}, fast...)...)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`row 2 (line 3): invalid: email_1: "ava.martin@@example" is not an email address`,
		`row 4 (line 5): invalid: date_of_birth: "31/12/1985" is not a date`,
		`row 5 (line 6): duplicate: the same record as row 1`,
		`row 6 (line 7): invalid: integration_id: is required`,
		`row 3 (line 4): failed: Invalid request body (first_name: Required)`,
		`row 7 (line 8): failed: Property "prop_999" was not found in Rent Manager`,
		`row 8 (line 9): invalid: phone_1_type: "cell" is not one of FAX, HOME, MOBILE, OTHER, WORK; rent_due_day: 42 is not a day of the month (1-31)`,
		"2 succeeded, 3 failed, 5 invalid, 1 duplicate",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	results := readCSV(t, filepath.Join(reportDir(t, dir, r), "results.csv"))
	if len(results) != 12 {
		t.Errorf("results.csv has %d rows, want 11: every record accounted for", len(results)-1)
	}
	var summary struct {
		Counts map[string]int `json:"counts"`
	}
	b, _ := os.ReadFile(filepath.Join(reportDir(t, dir, r), "summary.json"))
	if err := json.Unmarshal(b, &summary); err != nil || summary.Counts["invalid"] != 5 {
		t.Errorf("summary.json = %s", b)
	}

	// failed.csv is Data Loader's kind: the original columns, then row,
	// error_code and error; run again as it is, those three are left out.
	failed := readCSV(t, filepath.Join(reportDir(t, dir, r), "failed.csv"))
	if h := failed[0]; strings.Join(h[len(h)-3:], ",") != "row,error_code,error" || h[0] != results[0][7] {
		t.Errorf("failed.csv header %q", h)
	}
	again := runImporter(t, dir, nil, "run", "--dry-run", filepath.Join(reportDir(t, dir, r), "failed.csv"))
	if !strings.Contains(again.stderr, "columns of an earlier failed.csv left out: row, error_code, error") || strings.Contains(again.stderr, "columns not sent (kept in the report): Move-in Date, row") {
		t.Errorf("failed.csv run again:\n%s\n%s", again.stdout, again.stderr)
	}
}

func TestDryRunSendsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// An unreachable Redis proves a dry run needs none.
	r := runImporter(t, dir, map[string]string{"REDIS_URL": "redis://127.0.0.1:1"}, "run", "--dry-run", sample(t, "residents-with-errors.csv"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `row 1 (line 2): POST /v1/residents/ {"integration_id":"int_rentmanager_demo"`) ||
		!strings.Contains(r.stdout, "row 5 (line 6): duplicate") || !strings.Contains(r.stderr, "nothing was sent") {
		t.Errorf("dry run output:\n%s\n%s", r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "reports")); err == nil {
		t.Error("a dry run wrote a report")
	}
	if r := runImporter(t, dir, nil, "run", "--dry-run", sample(t, "residents.csv")); r.code != 0 {
		t.Errorf("dry run of a valid file: exit %d", r.code)
	}
}

func TestUsageAndInputErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte("[\n{\"first_name\": \"Ada\"},\n{\"first_name\": \"Bo\"\n"), 0o600)
	empty := filepath.Join(dir, "empty.csv")
	os.WriteFile(empty, nil, 0o600)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"run", "--nope", "x.csv"}, "unknown flag: --nope\nRun 'importer run --help' for usage."},
		{"unknown flag of status", []string{"status", "--nope"}, "Run 'importer status --help' for usage."},
		{"no file", []string{"run"}, "run takes a FILE"},
		{"missing file", []string{"run", filepath.Join(dir, "missing.csv")}, "cannot open " + filepath.Join(dir, "missing.csv") + ": no such file or directory"},
		{"unknown vendor", []string{"run", "--vendor", "acme", sample(t, "residents.csv")}, `unknown vendor "acme"`},
		{"bad rent due day", []string{"run", "--rent-due-day", "40", sample(t, "residents.csv")}, "--rent-due-day: 40 is not a day of the month"},
		{"broken JSON", []string{"run", broken}, "broken.json: line 4:"},
		{"empty file", []string{"run", empty}, "empty.csv: the file is empty"},
		{"unknown format", []string{"run", filepath.Join(dir, "x.txt")}, "cannot tell the format"},
		{"bad log format", []string{"--log-format", "xml", "run", empty}, `--log-format "xml"`},
		{"worker without Redis", []string{"worker"}, "worker needs REDIS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runImporter(t, dir, nil, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
			if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
				t.Errorf("a stack trace for a user error:\n%s", r.stderr)
			}
		})
	}
}

func TestUnreachableRedisExits3(t *testing.T) {
	t.Parallel()
	r := runImporter(t, t.TempDir(), map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}, "run", sample(t, "residents.csv"))
	if r.code != 3 || !strings.Contains(r.stderr, "cannot reach Redis at redis://127.0.0.1:1/0") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("exit %d, stderr %q; want 3 and one line", r.code, r.stderr)
	}
	r = runImporter(t, t.TempDir(), map[string]string{"REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}, "run", sample(t, "residents.csv"))
	if strings.Contains(r.stderr, "hunter2") {
		t.Errorf("the Redis password shows in %q", r.stderr)
	}
}

func TestHelpNamesEnvironmentVariables(t *testing.T) {
	t.Parallel()
	r := runImporter(t, t.TempDir(), nil, "run", "--help")
	for _, want := range []string{"$REDIS_URL", "$PROPEXO_API_URL", "$PROPEXO_API_KEY", "$IMPORTER_REPORT_DIR", "--dry-run", "--deadline", "Exit codes"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
	// The same defaults print the same way in every command.
	for _, cmd := range []string{"run", "worker"} {
		h := runImporter(t, t.TempDir(), nil, cmd, "--help")
		for _, want := range []string{"--poll-initial duration", `(default 2s)`, "--poll-max duration", `(default 5m0s)`, "--max-retries int", `(default 10)`} {
			if !strings.Contains(h.stdout, want) {
				t.Errorf("%s --help lacks %q", cmd, want)
			}
		}
	}
	if h := runImporter(t, t.TempDir(), nil, "retry", "--help"); strings.Contains(h.stdout, "in-process Redis") {
		t.Error("retry --help offers an in-process Redis: it needs the import's Redis")
	}
	if v := runImporter(t, t.TempDir(), nil, "--version"); v.code != 0 || !strings.HasPrefix(v.stdout, "importer ") {
		t.Errorf("--version: %d %q", v.code, v.stdout)
	}
}

// Ctrl-C stops the waiting, not the import: exit 130, and the same command
// later resumes waiting for the same import. With no worker serving the
// queue, Ctrl-C says so rather than that the import goes on (issue 22).
func TestInterruptThenResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "interrupt-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:500ms", "--rate-limit", "6000")
	env := map[string]string{"REDIS_URL": redistest.URL(t)}

	cmd := exec.Command(binary, "run", "--workers", "0", sample(t, "residents.json"))
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "REDIS_URL=" + env["REDIS_URL"]}
	stderr := &syncBuffer{}
	cmd.Stderr, cmd.Stdout = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stderr.String(), "rows resolved"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("run did not start waiting:\n%s", stderr.String())
		}
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	exitErr, ok := err.(*exec.ExitError)
	if !ok || exitErr.ExitCode() != 130 || !strings.Contains(stderr.String(), "waits in Redis, but no other worker is serving queue importer-submit: start 'importer worker' on this Redis, or run the same command again") {
		t.Fatalf("after Ctrl-C: %v\n%s", err, stderr.String())
	}

	env["PROPEXO_API_URL"], env["PROPEXO_API_KEY"] = "http://"+addr, key
	r := runImporter(t, dir, env, "run", "--poll-initial", "1s", "--rate-limit", "6000", sample(t, "residents.json"))
	if r.code != 0 || !strings.Contains(r.stderr, "already under way") || !strings.Contains(r.stdout, "12 succeeded") {
		t.Errorf("resumed run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestImportIDCannotMixTwoFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	if r := runImporter(t, dir, env, "run", "--no-wait", "--import-id", "nightly", sample(t, "residents.json")); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	r := runImporter(t, dir, env, "run", "--no-wait", "--import-id", "nightly", sample(t, "residents.ndjson"))
	if r.code != 2 || !strings.Contains(r.stderr, "import nightly was started from another file or with options that change what is written (residents.json)") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// A named pipe and standard input can be read only once: the importer
// keeps a private copy, so the file is checked, hashed and split from the
// same bytes. Devices are refused in one line before anything is
// registered.
func TestPipesAndStandardInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The private copies go to a folder of the test's own, where none of
	// another test's runs can be mistaken for a copy left behind.
	env := map[string]string{"TMPDIR": filepath.Join(dir, "tmp")}
	os.Mkdir(env["TMPDIR"], 0o700)
	data, err := os.ReadFile(sample(t, "residents.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "roster.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			f.Write(data)
			f.Close()
		}
	}()
	r := runImporter(t, dir, env, append([]string{"run", fifo}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "50 succeeded") || !strings.Contains(r.stdout, "50 rows from roster.csv") {
		t.Errorf("run of a named pipe: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// The same residents again, from standard input: the in-process
	// sandbox kept them, so the sync finds them unchanged.
	r = runImporterWithInput(t, dir, env, bytes.NewReader(data), append([]string{"run", "--format", "csv", "-"}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "50 unchanged") || !strings.Contains(r.stdout, "from stdin") {
		t.Errorf("run of standard input: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runImporterWithInput(t, dir, env, bytes.NewReader(data), "run", "--dry-run", "-"); r.code != 2 || !strings.Contains(r.stderr, "--format") {
		t.Errorf("standard input without --format: exit %d %s", r.code, r.stderr)
	}
	if r := runImporter(t, dir, env, "run", "--format", "csv", "/dev/zero"); r.code != 2 || !strings.Contains(r.stderr, "is not a file") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
		t.Errorf("a device: exit %d %s", r.code, r.stderr)
	}
	leftovers, _ := filepath.Glob(filepath.Join(env["TMPDIR"], "importer-input-*"))
	for _, l := range leftovers {
		t.Errorf("the private copy %s was left behind", l)
	}
}

// How an import is followed (its deadline, --verify, its report folder)
// does not make it another import: run again so, it is the same import, and
// the re-run's report folder wins. The same content under another name is
// refused without --again, naming the earlier import; with --again it is a
// new import.
func TestFollowUpOptionsKeepTheImport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	first := runImporter(t, dir, env, "run", "--no-wait", sample(t, "residents.json"))
	if first.code != 0 {
		t.Fatalf("first run: exit %d\n%s", first.code, first.stderr)
	}
	id := strings.Fields(first.stdout)[1]
	again := runImporter(t, dir, env, "run", "--no-wait", "--deadline", "2h", "--verify", "--poll-initial", "3s", "--report-dir", "elsewhere", sample(t, "residents.json"))
	if again.code != 0 || strings.Fields(again.stdout)[1] != id || !strings.Contains(again.stderr, "already under way") {
		t.Errorf("run with other follow-up options: exit %d, %q %q; want the same import %s resumed", again.code, again.stdout, again.stderr, id)
	}
	st := runImporter(t, dir, env, "status", "--json", id)
	if !strings.Contains(st.stdout, filepath.Join(dir, "elsewhere", id)) {
		t.Errorf("status after a re-run with --report-dir elsewhere:\n%s", st.stdout)
	}
	if other := runImporter(t, dir, env, "run", "--no-wait", "--vendor", "rentmanager", "--rent-period", "monthly", "--rent-due-day", "1", "--property-id", "prop_100", sample(t, "residents.json")); other.code != 0 || strings.Fields(other.stdout)[1] == id {
		t.Errorf("options that change what is written: exit %d %q; want another import", other.code, other.stdout+other.stderr)
	}

	copyPath := filepath.Join(dir, "roster-copy.json")
	data, _ := os.ReadFile(sample(t, "residents.json"))
	os.WriteFile(copyPath, data, 0o600)
	refused := runImporter(t, dir, env, "run", "--no-wait", copyPath)
	if refused.code != 2 || !strings.Contains(refused.stderr, "was imported already, as import "+id) || !strings.Contains(refused.stderr, "--again") {
		t.Errorf("the same content under another name: exit %d %q", refused.code, refused.stderr)
	}
	anew := runImporter(t, dir, env, "run", "--no-wait", "--again", sample(t, "residents.json"))
	if anew.code != 0 || strings.Fields(anew.stdout)[1] != id+"-2" {
		t.Errorf("--again: exit %d %q %q; want a new import %s-2", anew.code, anew.stdout, anew.stderr, id)
	}
}

// A report folder that cannot be written is found before anything is sent;
// a run that fails its API check leaves no import behind.
func TestRunChecksBeforeRegistering(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	ro := filepath.Join(dir, "read-only")
	os.MkdirAll(ro, 0o500)
	defer os.Chmod(ro, 0o700)
	if os.Getuid() != 0 { // root writes anywhere
		r := runImporter(t, dir, env, "run", "--no-wait", "--report-dir", ro, sample(t, "residents.json"))
		if r.code != 2 || !strings.Contains(r.stderr, "cannot write there") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("an unwritable report folder: exit %d %q", r.code, r.stderr)
		}
	}
	file := filepath.Join(dir, "report-dir-is-a-file")
	os.WriteFile(file, nil, 0o600)
	if r := runImporter(t, dir, env, "run", "--no-wait", "--report-dir", file, sample(t, "residents.json")); r.code != 2 || !strings.Contains(r.stderr, "--report-dir") {
		t.Errorf("a report folder that is a file: exit %d %q", r.code, r.stderr)
	}

	addr := sandboxProcess(t, dir, "right-key")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>Welcome to our website</body></html>"))
	}))
	defer web.Close()
	for _, tt := range []struct {
		name, url, key, want string
		code                 int
	}{
		{"rejected key", "http://" + addr, "wrong-key", "rejected the API key (401)", 3},
		{"a /v1 too many", "http://" + addr + "/v1", "right-key", "answered 404 to GET /v1/residents/: that is not the API's base URL", 2},
		{"not the API", web.URL, "right-key", "with something that is not the API's JSON", 2},
	} {
		runEnv := map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": tt.url, "PROPEXO_API_KEY": tt.key}
		r := runImporter(t, dir, runEnv, "run", "--no-wait", sample(t, "residents.csv"))
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: exit %d %q, want %d and one line saying %q", tt.name, r.code, r.stderr, tt.code, tt.want)
		}
	}
	if st := runImporter(t, dir, env, "status"); !strings.Contains(st.stdout, "no imports") {
		t.Errorf("a run that failed its checks left an import behind:\n%s", st.stdout)
	}
}

// Buildium, the PMS of Propexo's sandbox environment: its path takes a
// lease and a US address, and no notes, middle name or rent terms. A file
// that carries those has them reported and kept in the report, never sent
// (the sandbox answers 400 to a key the vendor does not take).
func TestBuildiumTakesOnlyItsFields(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "buildium.csv")
	os.WriteFile(file, []byte("Lease ID,First Name,Middle Name,Last Name,E-mail,Address,City,State,Zip Code,Country,Notes,Rent Period\n"+
		"lease_1,Ada,B,Lovelace,ada@example.com,1 Main St,Austin,TX,78701,US,VIP,monthly\n"+
		"lease_2,Alan,M,Turing,alan@example.com,2 Main St,Austin,TX,78701,US,,monthly\n"+
		",Grace,,Hopper,grace@example.com,3 Main St,Austin,TX,78701,CA,,\n"), 0o600)
	r := runImporter(t, dir, nil, append([]string{"run", "--vendor", "buildium", "--integration-id", "int_buildium_demo", file}, fast...)...)
	if r.code != 1 || !strings.Contains(r.stdout, "2 succeeded") || !strings.Contains(r.stdout, "1 invalid") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"columns buildium does not take, not sent (kept in the report): Middle Name, Notes, Rent Period",
		`lease_id: is required for buildium; country: is "CA"; buildium takes only US`,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	results := readCSV(t, filepath.Join(reportDir(t, dir, r), "results.csv"))
	if h := strings.Join(results[0], ","); !strings.Contains(h, "Notes") || !strings.Contains(strings.Join(results[1], ","), "VIP") {
		t.Errorf("the report lost the columns not sent: %q / %q", h, results[1])
	}
}

// A roster whose export the aliases cannot read (a full name, "Mobile",
// "Cell", dates as MM/DD/YYYY, a tenant code) is read with a saved mapping:
// the dry run shows the column → field table, the import sends what the
// mapping says and its summary names the mapping; a strict mapping refuses
// a file whose columns changed, before anything is registered.
func TestRunWithAMapping(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mapping := filepath.Join(dir, "roster-mapping.yaml")
	os.WriteFile(mapping, []byte(`strict: true
match_key: Tenant Code
columns:
  Full Name: full_name
  Mobile: phone_1
  Cell Type: phone_1_type
  DOB: date_of_birth
ignore: [Move-in]
constants:
  integration_id: int_rentmanager_demo
  property_id: prop_100
  rent_period: monthly
  rent_due_day: "1"
values:
  phone_1_type: {Cell: MOBILE, Landline: HOME}
dates:
  date_of_birth: MM/DD/YYYY
`), 0o600)
	roster := filepath.Join(dir, "roster.csv")
	os.WriteFile(roster, []byte("Tenant Code,Full Name,Mobile,Cell Type,DOB,Move-in\n"+
		`T-1,"Lovelace, Ada",555-010-1234,Cell,12/10/1985,2026-01-01`+"\n"+
		"T-2,Alan Mathison Turing,555-010-5678,Landline,06/23/1962,2026-02-01\n"), 0o600)

	dry := runImporter(t, dir, nil, "run", "--dry-run", "--vendor", "rentmanager", "--mapping", mapping, roster)
	for _, want := range []string{"Full Name   → first_name and last_name (split)", "Move-in     → (not sent)", "Tenant Code → x_id", "the mapping roster-mapping.yaml ("} {
		if !strings.Contains(dry.stderr, want) {
			t.Errorf("dry run lacks %q:\n%s", want, dry.stderr)
		}
	}
	if !strings.Contains(dry.stdout, `"first_name":"Ada","last_name":"Lovelace"`) || !strings.Contains(dry.stdout, `"date_of_birth":"1985-12-10T00:00:00Z","phone_1":"555-010-1234","phone_1_type":"MOBILE"`) ||
		!strings.Contains(dry.stdout, `"first_name":"Alan Mathison","last_name":"Turing"`) || strings.Contains(dry.stdout, "T-1") {
		t.Errorf("dry run sends:\n%s", dry.stdout)
	}

	r := runImporter(t, dir, nil, append([]string{"run", "--vendor", "rentmanager", "--mode", "create", "--mapping", mapping, roster}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "2 succeeded") || !strings.Contains(r.stdout, "columns read with the mapping roster-mapping.yaml") {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var summary struct {
		Mapping struct{ Name, Hash string } `json:"mapping"`
	}
	b, _ := os.ReadFile(filepath.Join(reportDir(t, dir, r), "summary.json"))
	if err := json.Unmarshal(b, &summary); err != nil || summary.Mapping.Name != "roster-mapping.yaml" {
		t.Errorf("summary.json = %s", b)
	}

	changed := filepath.Join(dir, "roster-2.csv")
	os.WriteFile(changed, []byte("Tenant Code,Full Name,Phone,Cell Type,DOB,Move-in\nT-3,Grace Hopper,555-010-9999,Cell,12/09/1906,\n"), 0o600)
	refused := runImporter(t, dir, nil, "run", "--vendor", "rentmanager", "--mapping", mapping, changed)
	if refused.code != 2 || !strings.Contains(refused.stderr, "it has columns the mapping does not name (Phone); it lacks columns the mapping names (Mobile)") {
		t.Errorf("a roster whose columns changed: exit %d\n%s", refused.code, refused.stderr)
	}
	if bad := runImporter(t, dir, nil, "run", "--mapping", filepath.Join(dir, "missing.yaml"), roster); bad.code != 2 || !strings.Contains(bad.stderr, "--mapping: cannot read") {
		t.Errorf("a missing mapping: exit %d\n%s", bad.code, bad.stderr)
	}
	sug := runImporter(t, dir, nil, "mapping", "suggest", changed)
	if sug.code != 0 || !strings.Contains(sug.stdout, "  DOB: date_of_birth") || !strings.Contains(sug.stdout, "# Full Name:") {
		t.Errorf("suggest: exit %d\n%s\n%s", sug.code, sug.stdout, sug.stderr)
	}
}
