package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// proc is a process the harness started: Redis, the sandbox, a worker, a
// run. Its output goes to a log file in the harness's folder.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
	// hwmKB is the highest VmHWM read from /proc while it ran.
	hwmKB atomic.Int64
}

func (h *harness) startProc(name string, env []string, path string, args ...string) (*proc, error) {
	logPath := filepath.Join(h.dir, fmt.Sprintf("%03d-%s.log", h.nextLog(), name))
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Dir = h.dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("cannot start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go p.watchMemory()
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// wait waits for the process to exit by itself.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w (see %s)", p.name, p.err, p.log)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill() // it may have ended already
		<-p.done
		return fmt.Errorf("%s did not finish within %s (see %s)", p.name, timeout, p.log)
	}
}

// stop asks the process to stop (SIGTERM) and waits for it.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may have ended already
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill() // it may have ended already
		<-p.done
	}
}

// watchMemory reads the process's peak resident memory (VmHWM) from /proc
// every 50 ms until it exits. The rusage of a child is no use here: Linux
// counts in it the harness's own memory from before the exec.
func (p *proc) watchMemory() {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					if kb > p.hwmKB.Load() {
						p.hwmKB.Store(kb)
					}
				}
			}
		}
		select {
		case <-p.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// peakRSSMB is the process's peak resident memory, as far as it was seen.
func (p *proc) peakRSSMB() float64 { return float64(p.hwmKB.Load()) / 1024 }

// cpuSeconds is the CPU time the process used, once it has exited.
func (p *proc) cpuSeconds() float64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	return (p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()).Seconds()
}

// selfCPU is the CPU time the harness has used so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// redisServer is a redis-server of the harness's own, keeping nothing on
// disk.
type redisServer struct {
	proc *proc
	url  string
	rdb  *redis.Client
}

func (h *harness) startRedis() (*redisServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	p, err := h.startProc("redis", nil, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err != nil {
		return nil, err
	}
	r := &redisServer{proc: p, url: "redis://" + addr, rdb: redis.NewClient(&redis.Options{Addr: addr})}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r.rdb.Ping(context.Background()).Err() == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("redis-server did not answer on %s (see %s)", addr, p.log)
		}
	}
}

func (r *redisServer) close() {
	r.rdb.Close()
	r.proc.stop()
}

// info returns a field of INFO's output.
func (r *redisServer) info(section, field string) string {
	s, err := r.rdb.Info(context.Background(), section).Result()
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (r *redisServer) memory(field string) int64 {
	n, _ := strconv.ParseInt(r.info("memory", field), 10, 64)
	return n
}

func waitForHTTP(url string) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("%s did not answer", url)
}
