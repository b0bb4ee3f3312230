package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/store"
)

// Redis behind Sentinel fails over while an import runs: the primary is
// killed (SIGKILL, no goodbye), the Sentinels promote the replica, and the
// workers and the waiting run carry on against it. Replication is
// asynchronous, so the writes of the last moment before the kill may be
// gone; a row whose create was sent must still never be sent again (its
// "being sent" mark reached the replica first), and every row ends with one
// outcome. The full size fails over twice, starting the killed server again
// in between (it comes back as the new primary's replica).
func TestChaosSentinelFailover(t *testing.T) {
	longScenario(t, "a Sentinel failover, the leases of the tasks in flight at the kill recovered")
	t.Parallel()
	rows, failovers := 150, 1
	if *chaosFull {
		rows, failovers = 2000, 2
	}
	h := redistest.StartSentinel(t)
	dir := t.TempDir()
	apiAddr, key := freeAddr(t), "chaos-sentinel-key"
	startProc(t, dir, map[string]string{"PROPEXO_API_KEY": key}, binary, "sandbox", "--addr", apiAddr, "--latency", "uniform:500ms-3s", "--rate-limit", "-1")
	waitForHTTP(t, "http://"+apiAddr+"/healthz")
	env := map[string]string{"REDIS_URL": h.URL, "PROPEXO_API_URL": "http://" + apiAddr, "PROPEXO_API_KEY": key}
	workerArgs := []string{"worker", "--concurrency", "8", "--rate-limit", "3000", "--poll-initial", "1s", "--poll-max", "4s", "--lookup-waits", "2s,4s,8s"}
	workers := []*proc{startProc(t, dir, env, binary, workerArgs...), startProc(t, dir, env, binary, workerArgs...)}
	file := residentsFile(t, dir, rows)
	began := time.Now()
	waiting := startProc(t, dir, map[string]string{"REDIS_URL": h.URL}, binary, "run", "--workers", "0", file)

	conn := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: h.Master, SentinelAddrs: sentinelAddrs(h)})
	defer conn.Close()
	st := store.New(conn)
	ctx := context.Background()
	var id string
	resolved := func() int {
		if id == "" {
			if ids, _ := st.Imports(ctx); len(ids) == 1 {
				id = ids[0]
			}
			return 0
		}
		p, _ := st.Progress(ctx, id)
		return p.Resolved
	}
	f := figures{scenario: "Redis Sentinel failover"}
	for n := 1; n <= failovers; n++ {
		// Fail over while rows are being sent and followed.
		for deadline := time.Now().Add(3 * time.Minute); resolved() < rows*n/(failovers+1); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the import did not reach %d resolved rows", rows*n/(failovers+1))
			}
		}
		before, killed := resolved(), time.Now()
		old, took := h.Failover(time.Minute)
		// Recovered once rows resolve again on the new primary.
		for deadline := time.Now().Add(3 * time.Minute); resolved() <= before; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no row resolved in 3 minutes after failover %d", n)
			}
		}
		f.events = append(f.events, fmt.Sprintf("failover %d at %d of %d rows resolved: a new primary %v after the kill, rows resolving again %v after it",
			n, before, rows, took.Round(100*time.Millisecond), time.Since(killed).Round(100*time.Millisecond)))
		if n < failovers {
			old.Start() // back as the new primary's replica
			h.Replicated(time.Minute)
		}
	}
	f.wall = time.Since(began)
	settle(t, &f, conn, h.URL, dir, id, rows, apiAddr, key, 10*time.Minute)
	if !waiting.exits(30 * time.Second) {
		t.Errorf("the waiting run did not end after the import finished:\n%s", waiting.log.String())
	}
	if out := waiting.log.String(); !strings.Contains(out, "report: ") {
		t.Errorf("the waiting run did not end with its report:\n%s", out)
	}
	// Each worker saw the new primary and queued the import's tasks again
	// (see jobs.Imports.WatchRedis).
	for i, w := range workers {
		if n := strings.Count(w.log.String(), "Redis has a new primary"); n < failovers {
			t.Errorf("worker %d noticed %d new primaries of %d failovers:\n%s", i+1, n, failovers, w.log.String())
		}
	}
}

func sentinelAddrs(h *redistest.Sentinel) []string {
	var addrs []string
	for _, s := range h.Sentinels {
		addrs = append(addrs, s.Addr)
	}
	return addrs
}

// The end-to-end path on a real three-primary Redis Cluster: an import with
// every kind of outcome, then the two nights of a roster (the snapshot, the
// plan and the ledger), status and delete, as on one Redis. Each import's
// keys share a slot; the keys every import shares (the rate limit, the
// poll estimates, the ledger, the list of imports) land on other nodes.
func TestEndToEndOnARedisCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	dir := t.TempDir()
	addr := sandboxProcess(t, dir, "cluster-key", "--latency", "uniform:200ms-1500ms")
	env := map[string]string{"REDIS_URL": c.URL, "PROPEXO_API_URL": "http://" + addr, "PROPEXO_API_KEY": "cluster-key"}
	fast := []string{"--poll-initial", "1s", "--rate-limit", "6000"}
	errs := runImporter(t, dir, env, append([]string{"run", sample(t, "residents-with-errors.csv")}, fast...)...)
	if errs.code != 1 || !strings.Contains(errs.stdout, "2 succeeded, 3 failed, 5 invalid, 1 duplicate") {
		t.Fatalf("the sample with errors on a cluster: exit %d\n%s\n%s", errs.code, errs.stdout, errs.stderr)
	}
	if n := len(readCSV(t, filepath.Join(reportDir(t, dir, errs), "results.csv"))); n != 12 {
		t.Errorf("results.csv has %d rows, want 11", n-1)
	}

	night1 := runImporter(t, dir, env, append([]string{"run", sample(t, "night-1.csv")}, fast...)...)
	if night1.code != 0 || !strings.Contains(night1.stdout, "20 succeeded") {
		t.Fatalf("night 1 on a cluster: exit %d\n%s\n%s", night1.code, night1.stdout, night1.stderr)
	}
	night2 := runImporter(t, dir, env, append([]string{"run", sample(t, "night-2.csv")}, fast...)...)
	if night2.code != 0 || !strings.Contains(night2.stdout, "5 succeeded, 15 unchanged") ||
		!strings.Contains(night2.stdout, "API requests: 2 creates, 3 updates, 0 retry-writes") {
		t.Fatalf("night 2 on a cluster: exit %d\n%s\n%s", night2.code, night2.stdout, night2.stderr)
	}

	status := runImporter(t, dir, env, "status")
	if status.code != 0 || strings.Count(status.stdout, "finished") < 3 {
		t.Errorf("status on a cluster: exit %d\n%s\n%s", status.code, status.stdout, status.stderr)
	}
	// The keys are spread over the nodes, as a cluster spreads them.
	spread := 0
	for _, n := range c.Nodes {
		if size, err := n.Client().DBSize(context.Background()).Result(); err == nil && size > 0 {
			spread++
		}
	}
	if spread < 2 {
		t.Errorf("the importer's keys are on %d of 3 nodes: this test does not exercise a cluster", spread)
	}
	creates, twice, _ := sandboxStats(t, addr, "cluster-key")
	if twice != 0 || creates != 2+1+20+2 {
		// The sample's 2 successes and the write its PMS failed (its other
		// failures were refused with a 400, no job made), night 1's 20,
		// night 2's 2 new residents.
		t.Errorf("the API saw %d creates and %d residents created twice; want 25 and 0", creates, twice)
	}
	t.Logf("Redis Cluster of 3 primaries: 51 rows in 3 imports, keys on %d of 3 nodes, %d creates, 0 lost, %d residents created twice", spread, creates, twice)
	id := filepath.Base(reportDir(t, dir, errs))
	del := runImporter(t, dir, env, "delete", id)
	if del.code != 0 || !strings.Contains(del.stdout, "deleted") {
		t.Errorf("delete on a cluster: exit %d\n%s\n%s", del.code, del.stdout, del.stderr)
	}
}
