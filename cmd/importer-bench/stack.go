package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/propexo-importer/importer/internal/sandbox"
)

const (
	apiKey        = "bench-api-key"
	webhookSecret = "bench-webhook-secret"
)

// stackConfig says what a stack runs: a redis-server, the sandbox and
// worker processes, each its own process as in production.
type stackConfig struct {
	latency      string // the sandbox's --latency
	sandboxLimit int    // requests a minute; -1: none
	workerLimit  int    // the workers' --rate-limit; 0: none
	workers      int
	concurrency  int
	webhooks     bool
	workerArgs   []string
	sandboxArgs  []string
	// profile, when set, is the prefix of the first worker's CPU and heap
	// profiles.
	profile string
}

type stack struct {
	h *harness
	// cpu is the CPU seconds each process used, once the stack is closed.
	cpu        map[string]float64
	cfg        stackConfig
	redis      *redisServer
	sandbox    *proc
	sandboxURL string
	workers    []*proc
}

func (h *harness) newStack(c stackConfig) (s *stack, err error) {
	s = &stack{h: h, cfg: c}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.redis, err = h.startRedis(); err != nil {
		return s, err
	}
	addr, err := freeAddr()
	if err != nil {
		return s, err
	}
	s.sandboxURL = "http://" + addr
	args := []string{"sandbox", "--addr", addr, "--latency", c.latency, "--rate-limit", strconv.Itoa(c.sandboxLimit)}
	var hookAddr string
	if c.webhooks {
		if hookAddr, err = freeAddr(); err != nil {
			return s, err
		}
		args = append(args, "--webhook-url", "http://"+hookAddr+"/webhooks/propexo")
	}
	if s.sandbox, err = h.startProc("sandbox", s.env(), h.bin, append(args, c.sandboxArgs...)...); err != nil {
		return s, err
	}
	if err := waitForHTTP(s.sandboxURL + "/healthz"); err != nil {
		return s, err
	}
	for i := range c.workers {
		args := []string{"worker", "--concurrency", strconv.Itoa(c.concurrency), "--rate-limit", strconv.Itoa(c.workerLimit)}
		if c.webhooks {
			if i == 0 {
				args = append(args, "--webhooks-addr", hookAddr)
			} else {
				args = append(args, "--webhooks")
			}
		}
		if c.profile != "" && i == 0 {
			args = append(args, "--cpu-profile", c.profile+".cpu.pprof", "--heap-profile", c.profile+".heap.pprof")
		}
		w, err := h.startProc("worker", s.env(), h.bin, append(args, c.workerArgs...)...)
		if err != nil {
			return s, err
		}
		s.workers = append(s.workers, w)
	}
	if hookAddr != "" {
		if err := waitForHTTP("http://" + hookAddr + "/"); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *stack) env() []string {
	return []string{"REDIS_URL=" + s.redis.url, "PROPEXO_API_KEY=" + apiKey, "PROPEXO_API_URL=" + s.sandboxURL,
		"PROPEXO_WEBHOOK_SECRET=" + webhookSecret, "IMPORTER_LOG_LEVEL=" + cmp.Or(os.Getenv("IMPORTER_BENCH_LOG_LEVEL"), "warn")}
}

// close stops the workers, then the sandbox and Redis, and returns the
// workers' peak memory.
func (s *stack) close() (workerRSSMB []float64) {
	s.cpu = map[string]float64{}
	for _, w := range s.workers {
		w.stop()
		workerRSSMB = append(workerRSSMB, w.peakRSSMB())
		s.cpu["workers"] += w.cpuSeconds()
	}
	s.workers = nil
	if s.sandbox != nil {
		s.sandbox.stop()
		s.cpu["sandbox"] = s.sandbox.cpuSeconds()
	}
	if s.redis != nil {
		s.redis.close()
		s.cpu["redis"] = s.redis.proc.cpuSeconds()
	}
	return workerRSSMB
}

// runTime is what an importer command took: wall time, peak memory, CPU.
type runTime struct {
	elapsed time.Duration
	rssMB   float64
	cpu     float64
}

// runArgs are the arguments of 'importer run FILE --workers 0' under the
// given import id: the stack's workers do the work, the run waits and writes
// the report.
func (s *stack) runArgs(file, id string, args ...string) []string {
	return append([]string{"run", file, "--workers", "0", "--import-id", id, "--report-dir", s.h.dir + "/reports"}, args...)
}

// startRun starts an 'importer run' (see runArgs).
func (s *stack) startRun(file, id string, args ...string) (*proc, error) {
	return s.h.startProc("run", s.env(), s.h.bin, s.runArgs(file, id, args...)...)
}

// importFile runs an import to its end.
func (s *stack) importFile(file, id string, timeout time.Duration, args ...string) (runTime, error) {
	return s.command(timeout, s.runArgs(file, id, args...)...)
}

// command runs an importer command to its end: its time, peak memory and
// CPU.
func (s *stack) command(timeout time.Duration, args ...string) (runTime, error) {
	began := time.Now()
	p, err := s.h.startProc(args[0], s.env(), s.h.bin, args...)
	if err != nil {
		return runTime{}, err
	}
	if err := p.wait(timeout); err != nil {
		return runTime{}, err
	}
	return runTime{elapsed: time.Since(began), rssMB: p.peakRSSMB(), cpu: p.cpuSeconds()}, nil
}

// stats reads the sandbox's counts.
func (s *stack) stats() (sandbox.Stats, error) {
	req, _ := http.NewRequest(http.MethodGet, s.sandboxURL+"/_sandbox/stats", nil)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sandbox.Stats{}, err
	}
	defer resp.Body.Close()
	var st sandbox.Stats
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("sandbox stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func requests(st sandbox.Stats) int {
	n := 0
	for _, v := range st.Requests {
		n += v
	}
	return n
}

// windowsOf lists the API's windows that ended: when each started (the
// clock's seconds) and the requests it counted.
func windowsOf(st sandbox.Stats) string {
	var b strings.Builder
	for i, w := range st.Windows {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", w.Start.Format("15:04:05.000"), w.Requests)
	}
	return b.String()
}
