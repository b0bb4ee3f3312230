package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/redistest"
)

// binary is the importer built once for the package's end-to-end tests,
// which run it as a user would: a subprocess with arguments and environment.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "importer-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "importer")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the importer: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	redistest.Main(m)
}

type result struct {
	code           int
	stdout, stderr string
}

// runImporter runs the binary in dir with only the given environment (plus
// PATH and HOME), and fails the test if it does not end within a minute.
func runImporter(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	return runImporterWithInput(t, dir, env, nil, args...)
}

// runImporterWithInput is runImporter with stdin reading from input.
func runImporterWithInput(t *testing.T, dir string, env map[string]string, input io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdin = input
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("importer %s did not end: %s", strings.Join(args, " "), stderr.String())
	}
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func sample(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return records
}

var reportLine = regexp.MustCompile(`report: (\S+)`)

func reportDir(t *testing.T, dir string, r result) string {
	t.Helper()
	m := reportLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no report path in the output:\n%s\n%s", r.stdout, r.stderr)
	}
	return filepath.Join(dir, m[1])
}

// fast makes the in-process sandbox and the polls quick, so the tests do
// not wait on the defaults meant for people.
var fast = []string{"--sandbox-latency", "uniform:200ms-1500ms", "--poll-initial", "1s", "--rate-limit", "6000"}

func TestRunSampleWithNothingConfigured(t *testing.T) {
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
		if line[0] != fmt.Sprint(i+1) || line[1] != "succeeded" || !strings.HasPrefix(line[2], "job_") || !strings.HasPrefix(line[3], "res_") {
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
	if h := failed[0]; strings.Join(h[len(h)-3:], ",") != "row,error_code,error" || h[0] != results[0][6] {
		t.Errorf("failed.csv header %q", h)
	}
	again := runImporter(t, dir, nil, "run", "--dry-run", filepath.Join(reportDir(t, dir, r), "failed.csv"))
	if !strings.Contains(again.stderr, "columns of an earlier failed.csv left out: row, error_code, error") || strings.Contains(again.stderr, "columns not sent (kept in the report): Move-in Date, row") {
		t.Errorf("failed.csv run again:\n%s\n%s", again.stdout, again.stderr)
	}
}

func TestDryRunSendsNothing(t *testing.T) {
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
		{"no file", []string{"run"}, "run takes one FILE"},
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

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// background starts a long-running subcommand and stops it with SIGTERM at
// the end of the test, checking that it exits 0.
func background(t *testing.T, dir string, env map[string]string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("importer %s after SIGTERM: %v\n%s", args[0], err, out.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("importer %s did not stop on SIGTERM", args[0])
		}
	})
	return out
}

// syncBuffer is a buffer a subprocess writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The production shape: a real Redis, the sandbox as its own process and
// two worker processes. run --no-wait, then run (waiting) of the same file
// is one import with one report, and the API sees one create per valid row.
func TestWorkersOnRealRedis(t *testing.T) {
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
	dir := t.TempDir()
	addr := sandboxProcess(t, dir, "right-key")
	redistest.Client(t)
	r := runImporter(t, dir, map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": "wrong-key-value"},
		"run", sample(t, "residents.csv"))
	if r.code != 3 || !strings.Contains(r.stderr, "rejected the API key (401)") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr+r.stdout, "wrong-key-value") {
		t.Error("the API key shows in the output")
	}
}

// sandboxProcess starts 'importer sandbox' with the key and extra flags on a
// free address, waits until it answers, and returns its address.
func sandboxProcess(t *testing.T, dir, key string, flags ...string) string {
	t.Helper()
	addr := freeAddr(t)
	background(t, dir, map[string]string{"PROPEXO_API_KEY": key}, append([]string{"sandbox", "--addr", addr}, flags...)...)
	waitForHTTP(t, "http://"+addr+"/healthz")
	return addr
}

func waitForHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s did not answer", url)
}

// Ctrl-C stops the waiting, not the import: exit 130, and the same command
// later resumes waiting for the same import.
func TestInterruptThenResume(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
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
	if !ok || exitErr.ExitCode() != 130 || !strings.Contains(stderr.String(), "goes on in the workers; run the same command to wait for it again") {
		t.Fatalf("after Ctrl-C: %v\n%s", err, stderr.String())
	}

	env["PROPEXO_API_URL"], env["PROPEXO_API_KEY"] = "http://"+addr, key
	r := runImporter(t, dir, env, "run", "--poll-initial", "1s", "--rate-limit", "6000", sample(t, "residents.json"))
	if r.code != 0 || !strings.Contains(r.stderr, "already under way") || !strings.Contains(r.stdout, "12 succeeded") {
		t.Errorf("resumed run: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestImportIDCannotMixTwoFiles(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
	env := map[string]string{"REDIS_URL": redistest.URL(t)}
	if r := runImporter(t, dir, env, "run", "--no-wait", "--import-id", "nightly", sample(t, "residents.json")); r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	r := runImporter(t, dir, env, "run", "--no-wait", "--import-id", "nightly", sample(t, "residents.ndjson"))
	if r.code != 2 || !strings.Contains(r.stderr, "import nightly was started from another file or with options that change what is written (residents.json)") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// Webhooks on: the sandbox posts to 'importer webhooks', the workers poll
// only as a fallback, and the rows resolve without status reads.
func TestWebhooksEndToEnd(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
	apiAddr, hookAddr := freeAddr(t), freeAddr(t)
	key, secret := "hooks-key", "hooks-secret"
	background(t, dir, map[string]string{"PROPEXO_API_KEY": key, "PROPEXO_WEBHOOK_SECRET": secret},
		"sandbox", "--addr", apiAddr, "--latency", "uniform:100ms-1s", "--rate-limit", "6000",
		"--webhook-url", "http://"+hookAddr+"/webhooks/propexo", "--webhook-duplicate-rate", "0.3", "--webhook-jitter", "500ms")
	redisURL := redistest.URL(t)
	metricsAddr := freeAddr(t)
	background(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_WEBHOOK_SECRET": secret}, "webhooks", "--addr", hookAddr, "--metrics-addr", metricsAddr)
	waitForHTTP(t, "http://"+apiAddr+"/healthz")
	waitForHTTP(t, "http://"+hookAddr+"/healthz")
	background(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "http://" + apiAddr, "PROPEXO_API_KEY": key},
		"worker", "--webhooks", "--poll-fallback", "1m", "--rate-limit", "6000")

	r := runImporter(t, dir, map[string]string{"REDIS_URL": redisURL}, "run", sample(t, "residents.json"))
	if r.code != 0 || !strings.Contains(r.stdout, "12 succeeded") || !strings.Contains(r.stdout, "12 creates, 0 retry-writes, 0 status checks") {
		t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The rows the webhooks resolved are counted where they were resolved.
	mresp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(body), `importer_rows_resolved_total{outcome="succeeded"} 12`) {
		t.Errorf("the webhook receiver's metrics do not count the 12 rows it resolved:\n%s", grepLines(string(body), "importer_rows_resolved_total"))
	}
	// A delivery with a bad signature is refused.
	resp, err := http.Post("http://"+hookAddr+"/webhooks/propexo", "application/json", strings.NewReader(`{"event":"DATA_NEW","root_job_id":"x"}`))
	if err != nil || resp.StatusCode != 401 {
		t.Errorf("unsigned delivery: %v %v", resp, err)
	}
}

// A PMS outage fails every write; once it is over, 'importer retry' retries
// them through retry-write and writes the same report again.
func TestRetryAfterAnOutage(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
	key := "retry-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:300ms", "--rate-limit", "6000", "--failure-rate", "1")
	env := map[string]string{"REDIS_URL": redistest.URL(t), "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key}

	first := runImporter(t, dir, env, "run", "--poll-initial", "1s", "--rate-limit", "6000", sample(t, "residents.json"))
	if first.code != 1 || !strings.Contains(first.stdout, "12 failed") {
		t.Fatalf("run during the outage: exit %d\n%s\n%s", first.code, first.stdout, first.stderr)
	}
	id := regexp.MustCompile(`import (\S+):`).FindStringSubmatch(first.stdout)[1]

	req, _ := http.NewRequest("PUT", "http://"+addr+"/_sandbox/faults", strings.NewReader(`{"failure_rate":0}`))
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("ending the outage: %v %v", resp, err)
	}
	r := runImporter(t, dir, env, "retry", "--rate-limit", "6000", id)
	if r.code != 0 || !strings.Contains(r.stdout, "12 succeeded") || !strings.Contains(r.stderr, "retrying 12 rows") {
		t.Fatalf("retry: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	results := readCSV(t, filepath.Join(reportDir(t, dir, r), "results.csv"))
	for _, line := range results[1:] {
		if line[1] != "succeeded" || !strings.HasPrefix(line[3], "res_") {
			t.Errorf("after the retry: %q", line[:6])
		}
	}
	if reportDir(t, dir, first) != reportDir(t, dir, r) {
		t.Error("the retry wrote another report")
	}
	if again := runImporter(t, dir, env, "retry", id); again.code != 0 || !strings.Contains(again.stderr, "no rows to retry") {
		t.Errorf("second retry: exit %d\n%s", again.code, again.stderr)
	}
}

// status, report and cancel, as an operator uses them on a running import.
func TestStatusReportCancel(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
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

func TestDashboardCommand(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
	addr := freeAddr(t)
	env := map[string]string{"REDIS_URL": redistest.URL(t), "IMPORTER_DASHBOARD_AUTH": "ops:pw"}
	if r := runImporter(t, dir, env, "run", "--no-wait", sample(t, "residents.json")); r.code != 0 {
		t.Fatal(r.stderr)
	}
	background(t, dir, env, "dashboard", "--addr", addr)
	waitForHTTP(t, "http://"+addr+"/healthz")
	resp, err := http.Get("http://" + addr + "/imports")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("without auth: %v %v", resp, err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/imports", nil)
	req.SetBasicAuth("ops", "pw")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("with auth: %v %v", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "residents.json") {
		t.Errorf("the Imports page does not list the import:\n%s", b)
	}
	if r := runImporter(t, dir, env, "dashboard", "--addr", "nonsense"); r.code != 2 {
		t.Errorf("bad --addr: exit %d %s", r.code, r.stderr)
	}
	// Beyond this machine without credentials: it says so.
	open := background(t, dir, map[string]string{"REDIS_URL": redistest.URL(t)}, "dashboard", "--addr", "0.0.0.0:"+strings.Split(freeAddr(t), ":")[1])
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(open.String(), "without --auth"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("a dashboard open to the network without auth did not warn:\n%s", open.String())
			break
		}
	}
}

// After an import, the worker's /metrics holds the importer's series and
// Asynq's queue series.
func TestWorkerMetrics(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
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

// A file dropped in the inbox is imported exactly once, with two schedulers
// firing every two seconds, and ends in done/ with its report.
func TestScheduledImportRunsOnceWithTwoSchedulers(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
	key := "schedule-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:200ms", "--rate-limit", "6000")
	redisURL := redistest.URL(t)
	inbox := filepath.Join(dir, "inbox")
	os.MkdirAll(inbox, 0o755)
	config := filepath.Join(dir, "schedules.yaml")
	os.WriteFile(config, []byte("schedules:\n  - name: every-two-seconds\n    cron: '@every 2s'\n    inbox: inbox/*.json\n    report_dir: nightly\n    settle: 1s\n"), 0o600)
	env := map[string]string{"REDIS_URL": redisURL}
	background(t, dir, env, "schedule", "--config", config)
	background(t, dir, env, "schedule", "--config", config)
	background(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key},
		"worker", "--concurrency", "8", "--rate-limit", "6000", "--poll-initial", "1s")

	data, _ := os.ReadFile(sample(t, "residents.json"))
	os.WriteFile(filepath.Join(inbox, ".residents.json.part"), data, 0o600)
	os.Rename(filepath.Join(inbox, ".residents.json.part"), filepath.Join(inbox, "residents.json"))

	done := filepath.Join(inbox, "done", "residents.json")
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(inbox)
			t.Fatalf("the file never reached done/; inbox holds %v", entries)
		}
	}
	time.Sleep(3 * time.Second) // more firings: they must find nothing to do
	st := runImporter(t, dir, env, "status", "--json")
	var all []struct {
		ID     string         `json:"import_id"`
		State  string         `json:"state"`
		Counts map[string]int `json:"counts"`
	}
	if err := json.Unmarshal([]byte(st.stdout), &all); err != nil {
		t.Fatalf("status --json: %v\n%s", err, st.stdout)
	}
	if len(all) != 1 || all[0].State != "finished" || all[0].Counts["succeeded"] != 12 {
		t.Errorf("imports = %+v, want one finished import of 12 rows", all)
	}
	if len(all) == 1 {
		if _, err := os.Stat(filepath.Join(dir, "reports", "nightly", all[0].ID, "results.csv")); err != nil {
			t.Errorf("no report: %v", err)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/_sandbox/stats", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		Creates int `json:"creates"`
	}
	json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if stats.Creates != 12 {
		t.Errorf("the API saw %d creates for 12 residents", stats.Creates)
	}
	if r := runImporter(t, dir, nil, "schedule", "--config", filepath.Join(dir, "missing.yaml")); r.code != 2 || !strings.Contains(r.stderr, "cannot read") {
		t.Errorf("missing config: %d %s", r.code, r.stderr)
	}
}

func TestUnreachableAPIExits3(t *testing.T) {
	redistest.Client(t)
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
	dir := t.TempDir()
	redistest.Client(t)
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

// A named pipe and standard input can be read only once: the importer
// keeps a private copy, so the file is checked, hashed and split from the
// same bytes. Devices are refused in one line before anything is
// registered.
func TestPipesAndStandardInput(t *testing.T) {
	dir := t.TempDir()
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
	r := runImporter(t, dir, nil, append([]string{"run", fifo}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "50 succeeded") || !strings.Contains(r.stdout, "50 rows from roster.csv") {
		t.Errorf("run of a named pipe: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	r = runImporterWithInput(t, dir, nil, bytes.NewReader(data), append([]string{"run", "--format", "csv", "-"}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "50 succeeded") || !strings.Contains(r.stdout, "from stdin") {
		t.Errorf("run of standard input: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runImporterWithInput(t, dir, nil, bytes.NewReader(data), "run", "--dry-run", "-"); r.code != 2 || !strings.Contains(r.stderr, "--format") {
		t.Errorf("standard input without --format: exit %d %s", r.code, r.stderr)
	}
	if r := runImporter(t, dir, nil, "run", "--format", "csv", "/dev/zero"); r.code != 2 || !strings.Contains(r.stderr, "is not a file") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
		t.Errorf("a device: exit %d %s", r.code, r.stderr)
	}
	leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "importer-input-*"))
	for _, l := range leftovers {
		if info, err := os.Stat(l); err == nil && time.Since(info.ModTime()) < time.Minute {
			t.Errorf("the private copy %s was left behind", l)
		}
	}
}

// A worker writes reports only under its own --report-dir (default
// ./reports): never into the folder a client named in Redis, which anyone
// who can write to that Redis could choose.
func TestWorkersWriteReportsOnlyInTheirOwnFolder(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
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

// How an import is followed (its deadline, --verify, its report folder)
// does not make it another import: run again so, it is the same import, and
// the re-run's report folder wins. The same content under another name is
// refused without --again, naming the earlier import; with --again it is a
// new import.
func TestFollowUpOptionsKeepTheImport(t *testing.T) {
	dir := t.TempDir()
	redistest.Client(t)
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
	dir := t.TempDir()
	redistest.Client(t)
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

// delete removes every key of an import (and refuses a running one without
// --force); prune removes the finished imports older than an age.
func TestDeleteAndPrune(t *testing.T) {
	dir := t.TempDir()
	rdb := redistest.Client(t)
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
	keys, _ := rdb.Keys(context.Background(), "imp:*").Result()
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
	dir := t.TempDir()
	redistest.Client(t)
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
	for _, want := range []string{"Outcomes:", "2 succeeded, 3 failed, 5 invalid, 1 duplicate", "Top errors:", "× invalid:", "Report:", "Next:", "importer retry " + id, "can be fixed and sent again"} {
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
	dir := t.TempDir()
	redistest.Client(t)
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
