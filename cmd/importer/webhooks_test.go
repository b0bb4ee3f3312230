package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/redistest"
)

// Webhooks on: the sandbox posts to 'importer webhooks', the workers poll
// only as a fallback, and the rows resolve without status reads.
func TestWebhooksEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
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
	if r.code != 0 || !strings.Contains(r.stdout, "12 succeeded") || !strings.Contains(r.stdout, "12 creates, 0 updates, 0 retry-writes, 0 status checks") {
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

// The subscriptions behind the webhooks: 'importer webhooks register'
// subscribes the receiver through POST /v1/webhooks/, and the sandbox then
// delivers to it, here with DATA_NEW naming a sync job, not the write (the
// documented example's case): every row still resolves from its webhook,
// with no status read. list shows the subscription without its secret;
// delete removes it.
func TestWebhookSubscriptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	hookAddr := freeAddr(t)
	key, secret := "subs-key", "subs-secret-0123"
	apiAddr := sandboxProcess(t, dir, key, "--latency", "uniform:100ms-1s", "--rate-limit", "6000", "--data-new", "sync")
	redisURL := redistest.URL(t)
	background(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_WEBHOOK_SECRET": secret}, "webhooks", "--addr", hookAddr)
	waitForHTTP(t, "http://"+hookAddr+"/healthz")
	api := map[string]string{"PROPEXO_API_URL": "http://" + apiAddr, "PROPEXO_API_KEY": key, "PROPEXO_WEBHOOK_SECRET": "short"}
	if r := runImporter(t, dir, api, "webhooks", "register", "--url", "http://"+hookAddr+"/webhooks/propexo"); r.code != 2 || !strings.Contains(r.stderr, "at least 10 characters") {
		t.Errorf("a short secret: exit %d\n%s", r.code, r.stderr)
	}
	api["PROPEXO_WEBHOOK_SECRET"] = secret
	r := runImporter(t, dir, api, "webhooks", "register", "--url", "http://"+hookAddr+"/webhooks/propexo")
	if r.code != 0 || !strings.Contains(r.stdout, "receives WRITE_OPERATION_FAILURE, DATA_NEW, DATA_UPDATE (model residents)") {
		t.Fatalf("register: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	id := strings.Fields(r.stdout)[1]
	// Registering again changes nothing: one subscription, as it was.
	if again := runImporter(t, dir, api, "webhooks", "register", "--url", "http://"+hookAddr+"/webhooks/propexo"); again.code != 0 || !strings.Contains(again.stdout, "webhook "+id+" already registered") {
		t.Errorf("register again: exit %d\n%s\n%s", again.code, again.stdout, again.stderr)
	}
	background(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "http://" + apiAddr, "PROPEXO_API_KEY": key},
		"worker", "--webhooks", "--poll-fallback", "1m", "--rate-limit", "6000")
	run := runImporter(t, dir, map[string]string{"REDIS_URL": redisURL}, "run", sample(t, "residents.json"))
	if run.code != 0 || !strings.Contains(run.stdout, "12 succeeded") || !strings.Contains(run.stdout, "12 creates, 0 updates, 0 retry-writes, 0 status checks") {
		t.Errorf("import with the subscription: exit %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	list := runImporter(t, dir, api, "webhooks", "list")
	if list.code != 0 || !strings.Contains(list.stdout, id) || !strings.Contains(list.stdout, "WRITE_OPERATION_FAILURE,DATA_NEW,DATA_UPDATE") || strings.Count(list.stdout, "wh_") != 1 || strings.Contains(list.stdout, secret) {
		t.Errorf("list: exit %d\n%s\n%s", list.code, list.stdout, list.stderr)
	}
	if del := runImporter(t, dir, api, "webhooks", "delete", id); del.code != 0 || !strings.Contains(del.stdout, "webhook "+id+" deleted") {
		t.Errorf("delete: exit %d\n%s\n%s", del.code, del.stdout, del.stderr)
	}
	if again := runImporter(t, dir, api, "webhooks", "delete", id); again.code != 2 || !strings.Contains(again.stderr, "the API refused it") {
		t.Errorf("delete again: exit %d\n%s", again.code, again.stderr)
	}
	if list := runImporter(t, dir, api, "webhooks", "list"); !strings.Contains(list.stdout, "no webhook subscriptions") {
		t.Errorf("list after delete:\n%s", list.stdout)
	}
}
