package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/redistest"
)

// status, report and cancel, as an operator uses them on a running import.
func TestStatusReportCancel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "ops-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:200ms", "--rate-limit", "6000")
	env := map[string]string{"REDIS_URL": redistest.URL(t)}

	// Queue 50 rows with no worker yet: nothing is sent.
	first := runImporter(t, dir, env, "run", "--no-wait", sample(t, "residents.csv"))
	if first.code != 0 {
		t.Fatalf("run --no-wait: %d %s", first.code, first.stderr)
	}
	id := regexp.MustCompile(`import (\S+) queued`).FindStringSubmatch(first.stdout)[1]

	st := runImporter(t, dir, env, "status")
	if st.code != 0 || !strings.Contains(st.stdout, id) || !strings.Contains(st.stdout, "running") || !strings.Contains(st.stdout, "0/50") {
		t.Errorf("status:\n%s\n%s", st.stdout, st.stderr)
	}
	js := runImporter(t, dir, env, "status", "--json", id)
	var one struct {
		ID    string `json:"import_id"`
		State string `json:"state"`
		Total int    `json:"total"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &one); err != nil || one.ID != id || one.Total != 50 || one.State != "running" {
		t.Errorf("status --json %s: %s (%v)", id, js.stdout, err)
	}

	// A report of a running import shows the rows as pending.
	rep := runImporter(t, dir, env, "report", "--report-dir", "elsewhere", id)
	if rep.code != 0 {
		t.Fatalf("report: %d %s", rep.code, rep.stderr)
	}
	pending := readCSV(t, filepath.Join(dir, "elsewhere", id, "results.csv"))
	if len(pending) != 51 || pending[1][1] != "pending" {
		t.Errorf("report of a running import: %d lines, first %q", len(pending), pending[1][:2])
	}

	// Cancel with no row in flight: the import ends at once, no worker
	// needed, its report in the canceller's folder.
	if c := runImporter(t, dir, env, "cancel", id); c.code != 0 || !strings.Contains(c.stdout, "cancelled") {
		t.Fatalf("cancel: %d %s %s", c.code, c.stdout, c.stderr)
	}
	js = runImporter(t, dir, env, "status", "--json", id)
	if err := json.Unmarshal([]byte(js.stdout), &one); err != nil || one.State != "cancelled" {
		t.Errorf("status right after the cancel: %s (%v), want cancelled", js.stdout, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "reports", id, "results.csv")); err != nil {
		t.Errorf("the cancel that ended the import wrote no report: %v", err)
	}
	// A worker that sees the queued rows sends none.
	background(t, dir, map[string]string{"REDIS_URL": env["REDIS_URL"], "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}, "worker", "--rate-limit", "6000")
	done := runImporter(t, dir, env, "run", "--workers", "0", sample(t, "residents.csv"))
	if done.code != 1 || !strings.Contains(done.stdout, "50 cancelled") {
		t.Errorf("after cancel: exit %d\n%s\n%s", done.code, done.stdout, done.stderr)
	}
	if again := runImporter(t, dir, env, "cancel", id); again.code != 2 || !strings.Contains(again.stderr, "already finished") {
		t.Errorf("cancel of a finished import: %d %s", again.code, again.stderr)
	}
	if st := runImporter(t, dir, env, "status", "nope"); st.code != 2 || !strings.Contains(st.stderr, "no import nope") {
		t.Errorf("status of an unknown import: %d %s", st.code, st.stderr)
	}
	if v := runImporter(t, dir, nil, "version"); v.code != 0 || !strings.HasPrefix(v.stdout, "importer ") {
		t.Errorf("version: %q", v.stdout)
	}
	if c := runImporter(t, dir, nil, "completion", "bash"); c.code != 0 || !strings.Contains(c.stdout, "bash completion") {
		t.Errorf("completion bash: %d", c.code)
	}
}

// delete removes every key of an import (and refuses a running one without
// --force); prune removes the finished imports older than an age.
func TestDeleteAndPrune(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conn := redistest.Client(t)
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	run := func(file string) string {
		t.Helper()
		r := runImporter(t, dir, env, "run", "--no-wait", file)
		if r.code != 0 {
			t.Fatalf("run --no-wait %s: %d %s", file, r.code, r.stderr)
		}
		return strings.Fields(r.stdout)[1]
	}
	running := run(sample(t, "residents.json"))
	finished := run(sample(t, "residents.ndjson"))
	if c := runImporter(t, dir, env, "cancel", finished); c.code != 0 {
		t.Fatalf("cancel: %s", c.stderr)
	}
	if d := runImporter(t, dir, env, "delete", running); d.code != 2 || !strings.Contains(d.stderr, "--force") {
		t.Errorf("delete of a running import: %d %q", d.code, d.stderr)
	}
	if p := runImporter(t, dir, env, "prune", "--older-than", "0d"); p.code != 0 || !strings.Contains(p.stdout, "1 finished import older than 0d deleted") || !strings.Contains(p.stdout, "1 import not finished left alone") {
		t.Errorf("prune: %d %q %q", p.code, p.stdout, p.stderr)
	}
	d := runImporter(t, dir, env, "delete", "--force", running)
	if d.code != 0 || !regexp.MustCompile(`import \S+ deleted: \d+ keys removed`).MatchString(d.stdout) {
		t.Errorf("delete --force: %d %q %q", d.code, d.stdout, d.stderr)
	}
	keys, _ := conn.Keys(context.Background(), "imp:*").Result()
	if len(keys) != 0 {
		t.Errorf("keys left after delete and prune: %v", keys)
	}
	if st := runImporter(t, dir, env, "status"); !strings.Contains(st.stdout, "no imports") {
		t.Errorf("status after delete and prune (deleted imports are not lost ones):\n%s", st.stdout)
	}
	if p := runImporter(t, dir, env, "prune", "--older-than", "soon"); p.code != 2 {
		t.Errorf("prune --older-than soon: %d", p.code)
	}
}

// status IMPORT_ID describes an import: outcomes, top errors, the report,
// what to do next; --watch shows it again as it changes until it ends. A
// run that ends with rows to look at says what to do next too.
func TestStatusDescribesAndWatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const key = "describe-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:500ms", "--rate-limit", "6000")
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	q := runImporter(t, dir, env, "run", "--no-wait", sample(t, "residents-with-errors.csv"))
	if q.code != 0 {
		t.Fatalf("run --no-wait: %s", q.stderr)
	}
	id := strings.Fields(q.stdout)[1]
	background(t, dir, map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}, "worker", "--rate-limit", "6000", "--poll-initial", "1s")
	w := runImporter(t, dir, env, "status", "--watch", id)
	if w.code != 0 || !strings.Contains(w.stdout, "State:") || !strings.Contains(w.stdout, "finished, started") {
		t.Fatalf("status --watch: exit %d\n%s\n%s", w.code, w.stdout, w.stderr)
	}
	d := runImporter(t, dir, env, "status", id)
	// The PMS refused prop_999's create for its data (pms_rejected): a retry
	// would fail alike, so it is among the rows to fix, with the invalid
	// ones and the two the API refused; nothing is left to retry.
	if strings.Contains(d.stdout, "importer retry "+id) {
		t.Errorf("status %s offers a retry of writes the PMS refused for their data:\n%s", id, d.stdout)
	}
	for _, want := range []string{"Outcomes:", "2 succeeded, 3 failed, 5 invalid, 1 duplicate", "Top errors:", "× invalid:", "Report:", "Next:", "8 rows can be fixed and sent again"} {
		if !strings.Contains(d.stdout, want) {
			t.Errorf("status %s lacks %q:\n%s", id, want, d.stdout)
		}
	}
	r := runImporter(t, dir, env, "run", "--workers", "0", sample(t, "residents-with-errors.csv"))
	if r.code != 1 || !strings.Contains(r.stdout, "next: ") || !strings.Contains(r.stdout, "1 retry-writes") && !strings.Contains(r.stdout, "0 retry-writes") {
		t.Errorf("the run's end:\n%s", r.stdout)
	}
}

// grepLines keeps the lines of text that hold what.
func grepLines(text, what string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// An import whose rows all have their outcome, but whose report no worker
// wrote (none ran, or its folder could not be written), is ended by
// importer report.
func TestReportEndsAnImportWhoseRowsAllEnded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	invalid := filepath.Join(dir, "all-invalid.csv")
	os.WriteFile(invalid, []byte("First Name,Last Name,E-mail\nAda,Lovelace,not-an-email\n"), 0o600)
	q := runImporter(t, dir, env, "run", "--no-wait", invalid)
	if q.code != 0 {
		t.Fatalf("run --no-wait: %d %s", q.code, q.stderr)
	}
	id := strings.Fields(q.stdout)[1]
	rep := runImporter(t, dir, env, "report", "--report-dir", "here", id)
	if rep.code != 0 || !strings.Contains(rep.stdout, "import "+id+" is finished") {
		t.Errorf("report: %d %q %q", rep.code, rep.stdout, rep.stderr)
	}
	var st struct {
		State string `json:"state"`
	}
	js := runImporter(t, dir, env, "status", "--json", id)
	if err := json.Unmarshal([]byte(js.stdout), &st); err != nil || st.State != "finished" {
		t.Errorf("status after the report: %s (%v)", js.stdout, err)
	}
}

// An import a worker finished has its report in the worker's folder:
// status says so, and how to have it here, rather than point at a folder
// that holds only the run's receipt (issue 22).
func TestStatusSaysWhereAWorkerWroteTheReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "where-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:100ms", "--rate-limit", "6000")
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	background(t, dir, map[string]string{"REDIS_URL": env["REDIS_URL"], "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key},
		"worker", "--rate-limit", "6000", "--poll-initial", "1s", "--report-dir", "worker-reports")
	first := runImporter(t, dir, env, "run", "--no-wait", sample(t, "residents.json"))
	if first.code != 0 {
		t.Fatalf("run --no-wait: %d %s", first.code, first.stderr)
	}
	id := regexp.MustCompile(`import (\S+) queued`).FindStringSubmatch(first.stdout)[1]
	var st result
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if st = runImporter(t, dir, env, "status", id); strings.Contains(st.stdout, "finished") {
			break
		}
	}
	if !strings.Contains(st.stdout, "written by a worker, into its --report-dir") || !strings.Contains(st.stdout, "'importer report "+id+"' writes it here") {
		t.Errorf("status of an import a worker finished:\n%s\n%s", st.stdout, st.stderr)
	}
}
