package main

import (
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/redistest"
)

// A PMS outage fails every write; once it is over, 'importer retry' retries
// them through retry-write and writes the same report again.
func TestRetryAfterAnOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
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
		if line[1] != "succeeded" || !strings.HasPrefix(line[4], "res_") {
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
