package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/redistest"
)

func TestDashboardCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
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
