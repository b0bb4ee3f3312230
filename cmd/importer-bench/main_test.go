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
	// Each scenario in its own run, side by side: they share nothing but
	// the machine, and their figures are checked, not their speed.
	want := map[string]int{"pipeline": 5, "waiting": 4, "scale": 9, "nightly": 13}
	for scenario, n := range want {
		t.Run(scenario, func(t *testing.T) {
			t.Parallel()
			checkFigures(t, bin, scenario, n)
		})
	}
}

// checkFigures runs one scenario, shrunk, and checks that it wrote its n
// figures, each a measure with its verdict, and the table.
func checkFigures(t *testing.T, bin, scenario string, n int) {
	out := filepath.Join(t.TempDir(), "results.json")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-bin", bin, "-scenarios", scenario, "-scale", "0.01", "-repeat", "2", "-out", out}, &stdout, &stderr)
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
	got := 0
	for _, f := range res.Figures {
		if f.Scenario != scenario {
			t.Errorf("a figure of scenario %s in a run of %s", f.Scenario, scenario)
		}
		got++
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
	if got != n {
		t.Errorf("scenario %s: %d figures, want %d", scenario, got, n)
	}
}
