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
