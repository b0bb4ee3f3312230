package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/redistest"
)

// The production shape: a real Redis, the sandbox as its own process and
// two worker processes. run --no-wait, then run (waiting) of the same file
// is one import with one report, and the API sees one create per valid row.
func TestWorkersOnRealRedis(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	redisURL := redistest.URL(t)
	redistest.Client(t) // empty it
	key := "e2e-sandbox-key"
	addr := sandboxProcess(t, dir, key, "--latency", "uniform:200ms-2s", "--rate-limit", "6000")
	workerEnv := map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key, "IMPORTER_LOG_FORMAT": "json"}
	logs := []*syncBuffer{
		background(t, dir, workerEnv, "worker", "--concurrency", "5", "--poll-initial", "1s", "--rate-limit", "6000"),
		background(t, dir, workerEnv, "worker", "--concurrency", "5", "--poll-initial", "1s", "--rate-limit", "6000"),
	}

	runEnv := map[string]string{"REDIS_URL": redisURL}
	file := sample(t, "residents-with-errors.csv")
	first := runImporter(t, dir, runEnv, "run", "--no-wait", file)
	if first.code != 0 || !strings.Contains(first.stdout, "queued: 11 rows (5 to send, 5 invalid, 1 duplicate)") {
		t.Fatalf("run --no-wait: exit %d\n%s\n%s", first.code, first.stdout, first.stderr)
	}
	id := regexp.MustCompile(`import (\S+) queued`).FindStringSubmatch(first.stdout)[1]

	second := runImporter(t, dir, runEnv, "run", file)
	if second.code != 1 || !strings.Contains(second.stdout, "import "+id+":") {
		t.Fatalf("run (waiting): exit %d, want 1 for import %s\n%s\n%s", second.code, id, second.stdout, second.stderr)
	}
	if !strings.Contains(second.stderr, "already under way") && !strings.Contains(second.stderr, "already finished") {
		t.Errorf("the second run did not say it resumed:\n%s", second.stderr)
	}
	third := runImporter(t, dir, runEnv, "run", file)
	if third.code != 1 || !strings.Contains(third.stderr, "already finished") {
		t.Errorf("third run: exit %d\n%s", third.code, third.stderr)
	}
	if reportDir(t, dir, second) != reportDir(t, dir, third) {
		t.Error("the runs pointed at two reports")
	}

	var stats struct {
		Requests          map[string]int `json:"requests"`
		Creates           int            `json:"creates"`
		CreatesByIdentity map[string]int `json:"creates_by_identity"`
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/_sandbox/stats", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	// 5 valid rows were sent once each; the API refused 2 of them (400).
	if stats.Requests["create_resident"] != 5 || stats.Creates != 3 {
		t.Errorf("the sandbox saw %d create requests and accepted %d, want 5 and 3", stats.Requests["create_resident"], stats.Creates)
	}
	for identity, n := range stats.CreatesByIdentity {
		if n != 1 {
			t.Errorf("%s was created %d times", identity, n)
		}
	}
	for _, l := range logs {
		if strings.Contains(l.String(), key) {
			t.Error("a worker logged the API key")
		}
	}
}

func TestWrongAPIKeyExits3(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := sandboxProcess(t, dir, "right-key")
	r := runImporter(t, dir, map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": "wrong-key-value"},
		"run", sample(t, "residents.csv"))
	if r.code != 3 || !strings.Contains(r.stderr, "rejected the API key (401)") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "wrong-key-value") {
		t.Error("the API key shows in the output")
	}
}

// After an import, the worker's /metrics holds the importer's series and
// Asynq's queue series.
func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	apiAddr, metricsAddr := freeAddr(t), freeAddr(t)
	key := "metrics-key"
	background(t, dir, map[string]string{"PROPEXO_API_KEY": key}, "sandbox", "--addr", apiAddr, "--latency", "fixed:300ms", "--rate-limit", "6000")
	waitForHTTP(t, "http://"+apiAddr+"/healthz")
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	background(t, dir, map[string]string{"REDIS_URL": env["REDIS_URL"], "PROPEXO_API_URL": "http://" + apiAddr, "PROPEXO_API_KEY": key},
		"worker", "--metrics-addr", metricsAddr, "--rate-limit", "6000", "--poll-initial", "1s")
	waitForHTTP(t, "http://"+metricsAddr+"/metrics")
	if r := runImporter(t, dir, env, "run", "--workers", "0", sample(t, "residents-with-errors.csv")); r.code != 1 {
		t.Fatalf("run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(b)
	for _, want := range []string{
		`importer_rows_resolved_total{outcome="succeeded"} 2`,
		`importer_rows_resolved_total{outcome="failed"} 3`,
		`importer_api_requests_total{endpoint="create_resident",status="200"} 3`,
		`importer_api_requests_total{endpoint="create_resident",status="400"} 2`,
		`importer_api_request_duration_seconds_bucket{endpoint="write_status",le=`,
		`importer_write_resolution_seconds_count 3`,
		`importer_rate_limit_waits_total 0`,
		`importer_api_rate_limited_total 0`,
		`asynq_queue_size{queue="importer-submit"}`,
		`asynq_tasks_enqueued_total{queue="importer-check",state="scheduled"}`,
		`asynq_tasks_processed_total{queue="importer-submit"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestUnreachableAPIExits3(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t) // nobody listens there
	r := runImporter(t, t.TempDir(), map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": "k"}, "run", sample(t, "residents.csv"))
	if r.code != 3 || !strings.Contains(r.stderr, "cannot reach the API at http://"+addr) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("exit %d, stderr %q; want 3 and one line naming the address", r.code, r.stderr)
	}
}

// A worker that finds the API answering 503 (or not at all) as it starts
// does not end: it starts, says so, and checks again with backoff until the
// API answers. A rejected key ends it at once: no row could be sent.
func TestWorkerStartsWhileTheAPIIsDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const key = "startup-key"
	addr := sandboxProcess(t, dir, key, "--error-rate", "1", "--error-burst", "1000000")
	env := map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}
	log := background(t, dir, env, "worker", "--rate-limit", "0")
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), what); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the worker did not say %q:\n%s", what, log.String())
			}
		}
	}
	waitFor("the API does not answer yet; the worker starts anyway")
	waitFor("worker started")
	waitFor("checking again")
	req, _ := http.NewRequest("PUT", "http://"+addr+"/_sandbox/faults", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("clearing the faults: %v %v", resp, err)
	}
	waitFor("the API answers")

	env["PROPEXO_API_KEY"] = "wrong-key"
	if r := runImporter(t, dir, env, "worker"); r.code != 3 || !strings.Contains(r.stderr, "rejected the API key (401)") {
		t.Errorf("a worker with a rejected key: exit %d, %q", r.code, r.stderr)
	}
}

// A worker writes reports only under its own --report-dir (default
// ./reports): never into the folder a client named in Redis, which anyone
// who can write to that Redis could choose.
func TestWorkersWriteReportsOnlyInTheirOwnFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const key = "reports-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:200ms", "--rate-limit", "6000")
	workerDir := filepath.Join(dir, "worker")
	os.MkdirAll(workerDir, 0o700)
	env := map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}
	background(t, workerDir, env, "worker", "--rate-limit", "6000", "--poll-initial", "1s")
	victim := filepath.Join(dir, "client-chose-this")
	q := runImporter(t, dir, map[string]string{"REDIS_URL": redistest.URL(t)}, "run", "--no-wait", "--report-dir", victim, sample(t, "residents.json"))
	if q.code != 0 {
		t.Fatalf("run --no-wait: %d %s", q.code, q.stderr)
	}
	id := strings.Fields(q.stdout)[1]
	own := filepath.Join(workerDir, "reports", id, "results.csv")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(own); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker wrote no report in its own folder (%s)", own)
		}
	}
	if _, err := os.Stat(filepath.Join(victim, id, "results.csv")); err == nil {
		t.Error("the worker wrote the report into the folder the client named in Redis")
	}
}
