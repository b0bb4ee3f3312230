package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/jobs"
)

// A run that waits while no worker serves the submit queue says so after
// 30 seconds, once, and says when one serves it again.
func TestWaitingRunSaysWhenNoWorkerServes(t *testing.T) {
	t.Parallel()
	conn := redistest.Client(t)
	now := time.Now()
	w := newServingWatch(asynq.NewInspectorFromRedisClient(conn), true)
	w.now, w.since = func() time.Time { return now }, now
	var said []string
	for range 8 { // 40 seconds, a look every 5
		if msg := w.check(); msg != "" {
			said = append(said, msg)
		}
		now = now.Add(5 * time.Second)
	}
	if len(said) != 1 || !strings.Contains(said[0], "no worker is serving queue importer-submit on this Redis; start 'importer worker' or run without --workers 0") {
		t.Fatalf("said %q, want one notice", said)
	}
	cfg := jobs.ServerConfig(1, nil)
	cfg.LogLevel = asynq.ErrorLevel
	srv := asynq.NewServerFromRedisClient(conn, cfg)
	if err := srv.Start(asynq.NewServeMux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	insp := asynq.NewInspectorFromRedisClient(conn)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if servers, err := insp.Servers(); err == nil && len(servers) > 0 {
			break // its first heartbeat is in Redis
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker's heartbeat never reached Redis")
		}
	}
	now = now.Add(5 * time.Second)
	if msg := w.check(); !strings.Contains(msg, "a worker is serving queue importer-submit now") {
		t.Errorf("with a worker: %q", msg)
	}
}

// Away from a terminal the waiting run prints a line at least every 30
// seconds, changed or not, and its rate counts only the rows sent and
// resolved, in rows a minute.
func TestProgressLinesAwayFromATerminal(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	now := time.Now()
	p := newProgress(&out, "imp")
	p.now, p.began = func() time.Time { return now }, now
	// 40 invalid rows resolve at once: no rate of thousands a minute.
	p.update(importer.Progress{Total: 100, Resolved: 40, Counts: map[importer.Outcome]int{importer.Invalid: 40}})
	for range 13 { // 65 seconds without change, a look every 5
		now = now.Add(5 * time.Second)
		p.update(importer.Progress{Total: 100, Resolved: 40, Counts: map[importer.Outcome]int{importer.Invalid: 40}})
	}
	now = now.Add(5 * time.Second)
	p.update(importer.Progress{Total: 100, Resolved: 50, Counts: map[importer.Outcome]int{importer.Invalid: 40, importer.Succeeded: 10}})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want one at once, two for 60 quiet seconds and one for the change:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[0], "40 of 100 rows resolved (0 succeeded)") || !strings.Contains(lines[1], "40 of 100 rows resolved (0 succeeded), 0 rows/min") {
		t.Errorf("lines: %q", lines)
	}
	if !strings.Contains(lines[3], "50 of 100 rows resolved (10 succeeded), 9 rows/min") {
		t.Errorf("last line %q, want 10 rows sent in 70 seconds: 9 rows/min", lines[3])
	}
}
