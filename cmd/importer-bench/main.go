// Command importer-bench measures the importer against its baselines, in
// the same run, on real processes: a redis-server of its own, the sandbox,
// 'importer worker' and 'importer run' (all from the binary given by -bin).
// It prints a table of every figure with its target and writes them, with
// the machine's CPU count and the Go and Redis versions, as JSON.
//
// 'make bench' builds the binary and runs every scenario; BENCHMARKS.md
// says what each figure means.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// harness holds what every scenario shares.
type harness struct {
	bin     string
	dir     string // scratch folder: files, logs, reports
	repeat  int
	scale   float64 // shrinks every size, for a quick try
	profile string  // where worker profiles go; empty: none
	logs    atomic.Int64
	stderr  io.Writer
}

func (h *harness) nextLog() int64 { return h.logs.Add(1) }

// size scales a row count.
func (h *harness) size(n int) int { return max(1, int(float64(n)*h.scale)) }

// sizeDuration scales a duration like a size, to no less than 2.5 minutes.
func (h *harness) sizeDuration(d time.Duration) time.Duration {
	return max(time.Duration(float64(d)*h.scale), 150*time.Second)
}

func (h *harness) say(format string, args ...any) {
	fmt.Fprintf(h.stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// scenario is one group of figures.
type scenario struct {
	name string
	run  func(h *harness) ([]figure, error)
}

var scenarios = []scenario{
	{"pipeline", pipeline},
	{"waiting", waiting},
	{"budget", budget},
	{"scale", scale},
	{"nightly", nightly},
	{"fairshare", fairshare},
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("importer-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin/importer", "the importer binary to measure")
	out := fs.String("out", "bench/results.json", "where to write the figures as JSON")
	only := fs.String("scenarios", "pipeline,waiting,budget,scale,nightly,fairshare", "scenarios to run, comma-separated")
	repeat := fs.Int("repeat", 3, "runs of each repeated measurement; figures are their medians")
	scaleBy := fs.Float64("scale", 1, "multiply every size by this (0.05 for a quick try; figures are then not comparable)")
	profile := fs.String("profile", "", "write the pipeline worker's CPU and heap profiles into this folder")
	keep := fs.Bool("keep", false, "keep the scratch folder (files, logs, reports)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	abs, err := filepath.Abs(*bin)
	if err != nil || !isFile(abs) {
		fmt.Fprintf(stderr, "importer-bench: no importer binary at %s: run 'make build' first\n", *bin)
		return 2
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(stderr, "importer-bench: redis-server is not on PATH")
		return 2
	}
	dir, err := os.MkdirTemp("", "importer-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "importer-bench: %v\n", err)
		return 1
	}
	if *keep {
		fmt.Fprintf(stderr, "scratch folder: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	h := &harness{bin: abs, dir: dir, repeat: max(1, *repeat), scale: *scaleBy, stderr: stderr}
	if *profile != "" {
		if h.profile, err = filepath.Abs(*profile); err != nil || os.MkdirAll(h.profile, 0o755) != nil {
			fmt.Fprintf(stderr, "importer-bench: -profile %s: cannot create the folder\n", *profile)
			return 2
		}
	}
	res := results{Machine: machineOf(abs), Repeat: h.repeat, Scale: h.scale, StartedAt: time.Now().UTC()}
	failed := false
	for _, s := range scenarios {
		if !slices.Contains(strings.Split(*only, ","), s.name) {
			continue
		}
		h.say("scenario %s", s.name)
		began := time.Now()
		figs, err := s.run(h)
		for i := range figs {
			figs[i].Scenario = s.name
			figs[i].judge()
		}
		res.Figures = append(res.Figures, figs...)
		res.Seconds = append(res.Seconds, scenarioTime{s.name, time.Since(began).Seconds()})
		if err != nil {
			failed = true
			res.Errors = append(res.Errors, s.name+": "+err.Error())
			h.say("scenario %s failed: %v", s.name, err)
		}
	}
	res.FinishedAt = time.Now().UTC()
	printTable(stdout, res)
	if err := res.write(*out); err != nil {
		fmt.Fprintf(stderr, "importer-bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nwrote %s\n", *out)
	if failed {
		return 1
	}
	return 0
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// figure is one measured number, with its target when it has one.
type figure struct {
	Scenario string    `json:"scenario"`
	Name     string    `json:"name"`
	Value    float64   `json:"value"`
	Unit     string    `json:"unit"`
	Runs     []float64 `json:"runs,omitempty"`
	// Target and AtLeast: the value must be >= Target (AtLeast) or <=.
	Target  *float64 `json:"target,omitempty"`
	AtLeast bool     `json:"at_least,omitempty"`
	Met     *bool    `json:"met,omitempty"`
	Note    string   `json:"note,omitempty"`
}

func (f *figure) judge() {
	if f.Target == nil {
		return
	}
	met := f.Value <= *f.Target
	if f.AtLeast {
		met = f.Value >= *f.Target
	}
	f.Met = &met
}

// measured is a figure without a target; atLeastFig and atMostFig have one.
func measured(name, unit string, runs ...float64) figure {
	return figure{Name: name, Unit: unit, Value: median(runs), Runs: runsOf(runs)}
}

func atLeastFig(name, unit string, target float64, runs ...float64) figure {
	f := measured(name, unit, runs...)
	f.Target, f.AtLeast = &target, true
	return f
}

func atMostFig(name, unit string, target float64, runs ...float64) figure {
	f := measured(name, unit, runs...)
	f.Target = &target
	return f
}

func runsOf(runs []float64) []float64 {
	if len(runs) < 2 {
		return nil
	}
	return runs
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

type scenarioTime struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

type machine struct {
	CPUs  int    `json:"cpus"`
	OS    string `json:"os"`
	Go    string `json:"go"`
	Redis string `json:"redis"`
	Build string `json:"importer"`
}

type results struct {
	Machine    machine        `json:"machine"`
	Repeat     int            `json:"repeat"`
	Scale      float64        `json:"scale"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
	Seconds    []scenarioTime `json:"scenario_seconds"`
	Figures    []figure       `json:"figures"`
	Errors     []string       `json:"errors,omitempty"`
}

func machineOf(bin string) machine {
	m := machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	if b, err := exec.Command("redis-server", "--version").Output(); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				m.Redis = v
			}
		}
	}
	if b, err := exec.Command(bin, "version").Output(); err == nil {
		m.Build = strings.TrimSpace(string(b))
	}
	return m
}

func (r results) write(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func printTable(w io.Writer, r results) {
	fmt.Fprintf(w, "%d CPUs, %s, Redis %s, %d runs per repeated figure\n\n", r.Machine.CPUs, r.Machine.Go, r.Machine.Redis, r.Repeat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\ttarget\tmet")
	for _, f := range r.Figures {
		target, met := "", ""
		if f.Target != nil {
			op := "<="
			if f.AtLeast {
				op = ">="
			}
			target = op + " " + number(*f.Target)
			met = "no"
			if *f.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", f.Scenario, f.Name, number(f.Value), f.Unit, target, met)
	}
	tw.Flush()
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}

func number(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
