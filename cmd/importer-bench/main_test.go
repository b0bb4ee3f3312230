package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The harness runs its scenarios, shrunk, against the built importer and
// writes every figure: this proves it works, not how fast anything is (no
// target is checked here; make bench does that).
func TestHarnessWritesEveryFigure(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not on PATH: install it (apt-get install redis-server)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "importer")
	build := exec.Command("go", "build", "-o", bin, "../importer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "results.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-bin", bin, "-scenarios", "pipeline,waiting,scale,nightly", "-scale", "0.01", "-repeat", "2", "-out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Machine.CPUs < 1 || res.Machine.Go == "" || res.Machine.Redis == "" || len(res.Errors) > 0 {
		t.Errorf("machine %+v, errors %v", res.Machine, res.Errors)
	}
	want := map[string]int{"pipeline": 5, "waiting": 4, "scale": 9, "nightly": 13}
	got := map[string]int{}
	for _, f := range res.Figures {
		got[f.Scenario]++
		// A count whose goal is none (residents created twice) is 0 when
		// met; any other figure is a measure, above 0.
		if none := f.Target != nil && *f.Target == 0 && !f.AtLeast; f.Value < 0 || (f.Value == 0 && !none) {
			t.Errorf("%s / %s: %v", f.Scenario, f.Name, f.Value)
		}
		if (f.Target == nil) != (f.Met == nil) {
			t.Errorf("%s / %s: a target without a verdict, or the reverse", f.Scenario, f.Name)
		}
		if strings.Contains(f.Name, "importer / floor") && len(f.Runs) != 2 {
			t.Errorf("%s: %d runs, want 2 (its median)", f.Name, len(f.Runs))
		}
		if !strings.Contains(stdout.String(), f.Name) {
			t.Errorf("the table lacks %q", f.Name)
		}
	}
	for s, n := range want {
		if got[s] != n {
			t.Errorf("scenario %s: %d figures, want %d", s, got[s], n)
		}
	}
}
