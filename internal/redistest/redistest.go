// Package redistest gives tests a real Redis: the one at
// IMPORTER_TEST_REDIS_URL, or a redis-server it starts on a free port for the
// test package and stops when the package's tests end. On a machine without
// redis-server (and outside CI) it falls back to an in-process miniredis, and
// says so.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

var (
	once     sync.Once
	url      string
	startErr error
	cleanup  func()
)

// Main runs a package's tests and stops the Redis it started. Call it from
// TestMain: func TestMain(m *testing.M) { redistest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

// URL returns the URL of the package's Redis, starting it on first use.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(start)
	if startErr != nil {
		tb.Fatalf("no Redis for the tests: %v", startErr)
	}
	return url
}

// Client returns a client of the package's Redis, emptied first, closed when
// the test ends. Tests that use it must not run in parallel.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		tb.Fatalf("flushing the test Redis: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func start() {
	if u := os.Getenv("IMPORTER_TEST_REDIS_URL"); u != "" {
		url = u
		return
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			startErr = fmt.Errorf("redis-server is not installed, and CI must test against a real Redis")
			return
		}
		m := miniredis.NewMiniRedis()
		m.ClockTTL(true)
		if startErr = m.Start(); startErr == nil {
			fmt.Fprintln(os.Stderr, "redistest: redis-server not found; using an in-process miniredis")
			url, cleanup = "redis://"+m.Addr(), m.Close
		}
		return
	}
	port, err := freePort()
	if err != nil {
		startErr = err
		return
	}
	dir, err := os.MkdirTemp("", "redistest")
	if err != nil {
		startErr = err
		return
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		startErr = fmt.Errorf("starting redis-server: %w", err)
		return
	}
	url = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	cleanup = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // killed: its exit is no news
		os.RemoveAll(dir)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := c.Ping(context.Background()).Err(); err == nil {
			return
		} else if time.Now().After(deadline) {
			startErr = fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
			return
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
