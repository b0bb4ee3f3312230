package redistest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process a test started, in Sentinel mode or
// not, which it can kill and start again.
type Server struct {
	Addr string
	args []string
	dir  string
	cmd  *exec.Cmd
	tb   testing.TB
}

// need returns redis-server's path, or ends the test: CI must have it,
// elsewhere the test is skipped with the reason (these tests start several
// real servers; an in-process Redis has no replication or cluster).
func need(tb testing.TB, name string) string {
	tb.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not installed, and CI must test against real Redis processes", name)
		}
		tb.Skipf("%s is not installed: this test needs real Redis processes", name)
	}
	return bin
}

func startServer(tb testing.TB, dir string, port int, args ...string) *Server {
	tb.Helper()
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), args: args, dir: dir, tb: tb}
	s.Start()
	tb.Cleanup(s.Kill)
	return s
}

// Start starts the server (again), with the arguments it first had.
func (s *Server) Start() {
	s.tb.Helper()
	cmd := exec.Command(need(s.tb, "redis-server"), s.args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("starting redis-server: %v", err)
	}
	s.cmd = cmd
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on %s did not answer", s.Addr)
		}
	}
}

// Kill kills the server at once (SIGKILL), as a crashed host would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait() // killed: its exit is no news
	s.cmd = nil
}

// Pause freezes the server (SIGSTOP): connected, it answers nothing, as a
// host under a long stall.
func (s *Server) Pause() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume ends a Pause (SIGCONT).
func (s *Server) Resume() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Client returns a client of this server alone, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.tb.Cleanup(func() { c.Close() })
	return c
}

// Sentinel is a primary, one replica and three Sentinels watching them, all
// on loopback: a Redis that fails over as production's does.
type Sentinel struct {
	// URL is the importer's REDIS_URL for it
	// (redis-sentinel://s1,s2,s3?master=...).
	URL string
	// Master is the name the Sentinels know the primary by.
	Master string
	// Servers are the primary and the replica, in the order started.
	Servers   []*Server
	Sentinels []*Server
	tb        testing.TB
}

// StartSentinel starts a primary, its replica and three Sentinels that fail
// over after one second without an answer, and waits until the Sentinels
// know the replica.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	need(tb, "redis-server")
	dir := tb.TempDir()
	ports := freePorts(tb, 5)
	h := &Sentinel{Master: "importer", tb: tb}
	primary := startServer(tb, dir, ports[0], "--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dbfilename", "primary.rdb", "--dir", dir)
	replica := startServer(tb, dir, ports[1], "--port", strconv.Itoa(ports[1]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dbfilename", "replica.rdb", "--dir", dir, "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
	h.Servers = []*Server{primary, replica}
	var addrs []string
	for i, port := range ports[2:] {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", i))
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\nsentinel failover-timeout %[3]s 3000\nsentinel parallel-syncs %[3]s 1\n",
			port, dir, h.Master, ports[0])
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			tb.Fatal(err)
		}
		s := startServer(tb, dir, port, conf, "--sentinel")
		h.Sentinels = append(h.Sentinels, s)
		addrs = append(addrs, s.Addr)
	}
	h.URL = "redis-sentinel://" + strings.Join(addrs, ",") + "?master=" + h.Master
	// Ready when every Sentinel knows the replica and the others.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ready := true
		for _, s := range h.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
			reps, err1 := c.Replicas(context.Background(), h.Master).Result()
			sens, err2 := c.Sentinels(context.Background(), h.Master).Result()
			_ = c.Close()
			if err1 != nil || err2 != nil || len(reps) < 1 || len(sens) < 2 {
				ready = false
			}
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the Sentinels did not find the replica and each other in 20s")
		}
	}
	return h
}

// Primary returns the server the Sentinels name as primary now.
func (h *Sentinel) Primary() *Server {
	h.tb.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: h.Sentinels[0].Addr})
	defer func() { _ = c.Close() }()
	addr, err := c.GetMasterAddrByName(context.Background(), h.Master).Result()
	if err != nil {
		h.tb.Fatalf("asking Sentinel for the primary: %v", err)
	}
	for _, s := range h.Servers {
		if s.Addr == net.JoinHostPort(addr[0], addr[1]) {
			return s
		}
	}
	h.tb.Fatalf("Sentinel names %v, which this test did not start", addr)
	return nil
}

// Failover kills the primary and returns once the Sentinels name another
// primary that answers as one, with how long that took. The old primary
// stays down until Start.
func (h *Sentinel) Failover(timeout time.Duration) (old *Server, took time.Duration) {
	h.tb.Helper()
	old = h.Primary()
	began := time.Now()
	old.Kill()
	for ; ; time.Sleep(50 * time.Millisecond) {
		if time.Since(began) > timeout {
			h.tb.Fatalf("no failover %v after the primary %s was killed", timeout, old.Addr)
		}
		now := h.Primary()
		if now == old {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: now.Addr})
		role, err := c.Do(context.Background(), "ROLE").Slice()
		c.Close()
		if err == nil && len(role) > 0 && role[0] == "master" {
			return old, time.Since(began)
		}
	}
}

// Replicated waits until every server that is up is the primary or a
// replica in sync with it (after a killed primary was started again).
func (h *Sentinel) Replicated(timeout time.Duration) {
	h.tb.Helper()
	primary := h.Primary()
	c := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer c.Close()
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online") {
			return
		}
		if time.Now().After(deadline) {
			h.tb.Fatalf("the primary %s has no replica in sync after %v:\n%s", primary.Addr, timeout, info)
		}
	}
}

// Cluster is a Redis Cluster of primaries without replicas, on loopback.
type Cluster struct {
	// URL is the importer's REDIS_URL for it (redis-cluster://a,b,c).
	URL   string
	Nodes []*Server
}

// StartCluster starts n cluster-enabled servers, joins them into one
// cluster with redis-cli --cluster create, and waits until every node says
// the cluster is ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	need(tb, "redis-server")
	cli := need(tb, "redis-cli")
	dir := tb.TempDir()
	c := &Cluster{}
	var addrs []string
	for _, port := range clusterPorts(tb, n) {
		p := strconv.Itoa(port)
		s := startServer(tb, dir, port, "--port", p, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
			"--dbfilename", "node-"+p+".rdb", "--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+p+".conf", "--cluster-node-timeout", "5000")
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ok := true
		for _, s := range c.Nodes {
			nc := redis.NewClient(&redis.Options{Addr: s.Addr})
			info, err := nc.ClusterInfo(context.Background()).Result()
			nc.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the cluster is not ok 20s after it was created")
		}
	}
	c.URL = "redis-cluster://" + strings.Join(addrs, ",")
	return c
}

func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	for len(ports) < n {
		p, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports
}

// clusterPorts finds n ports whose cluster bus ports (port+10000) are free
// too.
func clusterPorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			tb.Fatal("no free ports for a cluster")
		}
		p := 20000 + rand.IntN(25000)
		if !slices.Contains(ports, p) && free(p) && free(p+10000) {
			ports = append(ports, p)
		}
	}
	return ports
}

func free(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
