package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/fetchtest"
	"github.com/propexo-importer/importer/internal/notify"
	"github.com/propexo-importer/importer/internal/notifytest"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// A file dropped in the inbox is imported exactly once, with two schedulers
// firing every two seconds, and ends in done/ with its report; its Slack
// notification (the URL from the environment) arrives once, and 'schedule
// list' shows the firing that imported it.
func TestScheduledImportRunsOnceWithTwoSchedulers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "schedule-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:200ms", "--rate-limit", "6000")
	redisURL := redistest.URL(t)
	inbox := filepath.Join(dir, "inbox")
	os.MkdirAll(inbox, 0o755)
	config := filepath.Join(dir, "schedules.yaml")
	os.WriteFile(config, []byte("schedules:\n  - name: every-two-seconds\n    cron: '@every 2s'\n    inbox: inbox/*.json\n    report_dir: nightly\n    settle: 1s\n"+
		"    notify:\n      - slack: ${SLACK_WEBHOOK_URL}\n"), 0o600)
	slack := notifytest.NewReceiver(t, "", "")
	slackURL := slack.URL + "/services/T0/B0/SLACKSECRET"
	env := map[string]string{"REDIS_URL": redisURL, "SLACK_WEBHOOK_URL": slackURL}
	logs := []*syncBuffer{background(t, dir, env, "schedule", "--config", config), background(t, dir, env, "schedule", "--config", config),
		background(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key},
			"worker", "--concurrency", "8", "--rate-limit", "6000", "--poll-initial", "1s", "--dashboard-url", "http://127.0.0.1:8088")}

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
	// A firing after the file was filed finds nothing to do, and starts
	// nothing (the status below counts one import).
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	conn := redis.NewClient(opts)
	defer conn.Close()
	filed := time.Now()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		last, _, err := store.New(conn).ScheduleHistory(t.Context(), "every-two-seconds")
		if err == nil && last != nil && last.At.After(filed) {
			if last.Outcome != importer.FiringNoFile {
				t.Errorf("a firing after the file was filed: %+v, want %s", last, importer.FiringNoFile)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no firing after the file was filed (last %+v, %v)", last, err)
		}
	}
	all := oneFinishedImportOf12(t, dir, env)
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

	// Every notification queued has been delivered (or given up) when the
	// notify queue holds nothing to run: a second one would be there.
	insp := asynq.NewInspectorFromRedisClient(conn)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		info, err := insp.GetQueueInfo(jobs.QueueNotify)
		if err == nil && len(slack.Deliveries()) > 0 && info.Pending+info.Active+info.Scheduled+info.Retry == 0 {
			break
		}
	}
	if got := slack.Deliveries(); len(got) != 1 {
		t.Errorf("%d Slack messages, want 1", len(got))
	} else if body := string(got[0].Body); !strings.Contains(body, "Import every-two-seconds: residents.json finished: all 12 rows succeeded") ||
		len(all) == 1 && !strings.Contains(body, "Dashboard: http://127.0.0.1:8088/imports/"+all[0].ID) {
		t.Errorf("the Slack message says %s", body)
	}
	for _, l := range logs {
		if strings.Contains(l.String(), "SLACKSECRET") {
			t.Errorf("a log shows the Slack URL's secret:\n%s", l.String())
		}
	}

	list := runImporter(t, dir, env, "schedule", "list", "--config", config)
	if list.code != 0 || !strings.Contains(list.stdout, "every-two-seconds") || len(all) == 1 && !strings.Contains(list.stdout, all[0].ID) {
		t.Errorf("schedule list: %d\n%s%s", list.code, list.stdout, list.stderr)
	}
	if strings.Contains(list.stdout+list.stderr, "SLACKSECRET") {
		t.Errorf("schedule list shows the Slack URL's secret")
	}

	// The dashboard's Schedules page shows the same for the running
	// schedulers' entries.
	dash := freeAddr(t)
	background(t, dir, map[string]string{"REDIS_URL": redisURL}, "dashboard", "--addr", dash)
	waitForHTTP(t, "http://"+dash+"/healthz")
	var page []byte
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err = http.Get("http://" + dash + "/schedules")
		if err != nil {
			t.Fatal(err)
		}
		page, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(page), "every-two-seconds") || time.Now().After(deadline) {
			break
		}
	}
	if resp.StatusCode != 200 || !strings.Contains(string(page), "every-two-seconds") || len(all) == 1 && !strings.Contains(string(page), `href="/imports/`+all[0].ID+`"`) {
		t.Errorf("/schedules: %d\n%s", resp.StatusCode, page)
	}
	if strings.Contains(string(page), "SLACKSECRET") {
		t.Errorf("the Schedules page shows the Slack URL's secret")
	}
}

// A run's --notify webhook is told how the import went, signed; one without
// IMPORTER_NOTIFY_SECRET is refused before anything is sent.
func TestRunNotifiesItsWebhook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hook := notifytest.NewReceiver(t, "run-secret", notify.SignatureHeader)
	r := runImporter(t, dir, nil, "run", "--notify", hook.URL+"/hook", sample(t, "residents-with-errors.csv"))
	if r.code != 2 || !strings.Contains(r.stderr, "IMPORTER_NOTIFY_SECRET is not set") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
		t.Errorf("a webhook without a secret: exit %d\n%s", r.code, r.stderr)
	}
	env := map[string]string{"IMPORTER_NOTIFY_SECRET": "run-secret", "IMPORTER_NOTIFY": hook.URL + "/hook"}
	r = runImporter(t, dir, env, "run", "--sandbox-latency", "fixed:100ms", "--notify-on", "failures,stopped", sample(t, "residents-with-errors.csv"))
	if r.code != 1 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	// run ends once the report is written; the notification follows it.
	for deadline := time.Now().Add(10 * time.Second); len(hook.Deliveries()) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	got := hook.Deliveries()
	if len(got) != 1 || !got[0].SignatureOK {
		t.Fatalf("%d deliveries, want 1 signed", len(got))
	}
	var ev importer.Event
	json.Unmarshal(got[0].Body, &ev)
	if ev.Kind != importer.EventFailures || ev.Counts[importer.Invalid] == 0 || len(ev.TopErrors) == 0 || ev.Rows != nil {
		t.Errorf("event = %+v, want failures with counts and codes, no rows", ev)
	}
}

// A schedule whose inbox is on an SFTP server: the scheduler and a worker,
// as processes, the worker signing in with the key and known_hosts the
// environment names; the roster dropped there is imported once and filed
// in done/ on the server, and no log shows the address's user.
func TestScheduledSFTPInboxEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := "sftp-schedule-key"
	addr := sandboxProcess(t, dir, key, "--latency", "fixed:200ms", "--rate-limit", "6000")
	redisURL := redistest.URL(t)
	served := filepath.Join(dir, "served")
	drop := filepath.Join(served, "drop")
	os.MkdirAll(drop, 0o755)
	srv := fetchtest.StartSFTP(t, served)
	config := filepath.Join(dir, "schedules.yaml")
	os.WriteFile(config, []byte("schedules:\n  - name: sftp-drop\n    cron: '@every 2s'\n    inbox: sftp://pmsuser@"+srv.Addr+drop+"/*.json\n    ready_marker: .done\n"), 0o600)
	logs := []*syncBuffer{background(t, dir, map[string]string{"REDIS_URL": redisURL}, "schedule", "--config", config),
		background(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": key,
			"IMPORTER_SSH_KEY": srv.KeyFile, "IMPORTER_SSH_KNOWN_HOSTS": srv.KnownHosts(t, srv.HostKey)},
			"worker", "--concurrency", "8", "--rate-limit", "6000", "--poll-initial", "1s")}

	data, _ := os.ReadFile(sample(t, "residents.json"))
	os.WriteFile(filepath.Join(drop, "residents.json"), data, 0o600)
	os.WriteFile(filepath.Join(drop, "residents.json.done"), nil, 0o600)

	done := filepath.Join(drop, "done", "residents.json")
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := os.Stat(done); err == nil {
			break
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(drop)
			t.Fatalf("the file never reached done/ on the server; its folder holds %v\n%s", entries, logs[1].String())
		}
	}
	oneFinishedImportOf12(t, dir, map[string]string{"REDIS_URL": redisURL})
	if _, err := os.Stat(filepath.Join(drop, "residents.json.done")); err == nil {
		t.Error("the ready marker was left behind")
	}
	for _, l := range logs {
		if strings.Contains(l.String(), "pmsuser@") {
			t.Errorf("a log shows the address's user:\n%s", l.String())
		}
	}
}

// listedImport is an import as 'importer status --json' lists it, read
// apart from the command's own type.
type listedImport struct {
	ID     string         `json:"import_id"`
	State  string         `json:"state"`
	Counts map[string]int `json:"counts"`
}

// oneFinishedImportOf12 lists the imports and checks that they are one,
// finished, whose 12 rows (the sample's) succeeded.
func oneFinishedImportOf12(t *testing.T, dir string, env map[string]string) []listedImport {
	t.Helper()
	st := runImporter(t, dir, env, "status", "--json")
	var all []listedImport
	if err := json.Unmarshal([]byte(st.stdout), &all); err != nil {
		t.Fatalf("status --json: %v\n%s", err, st.stdout)
	}
	if len(all) != 1 || all[0].State != "finished" || all[0].Counts["succeeded"] != 12 {
		t.Errorf("imports = %+v, want one finished import of 12 rows", all)
	}
	return all
}
