package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/redistest"
)

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
