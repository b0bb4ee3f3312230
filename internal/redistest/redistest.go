// Package redistest gives tests a real Redis: the one at
// IMPORTER_TEST_REDIS_URL, or a redis-server it starts on a free port for the
// test package and stops when the package's tests end. On a machine without
// redis-server (and outside CI) it falls back to an in-process miniredis, and
// says so.
//
// Each test gets a database of its own, empty (URL and Client name it), so
// tests that share nothing else can run in parallel (t.Parallel): the
// server started here has databases enough for every test of a package at
// once; a Redis of the environment's has its 16, and a test waits for one
// while all are leased.
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
	url      string // the server's, database 0
	startErr error
	cleanup  func()

	// The databases leased to tests, by test; unleased holds the others.
	leaseMu  sync.Mutex
	leased   = map[testing.TB]int{}
	unleased chan int
)

// databases is how many databases the redis-server started here has, and
// how many tests of a package can hold one at once.
const databases = 256

// Main runs a package's tests and stops the Redis it started. Call it from
// TestMain: func TestMain(m *testing.M) { redistest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

// URL returns the URL of the test's own database of the package's Redis,
// starting the server on first use: the same database for every call of
// one test, emptied when the test first asks for it, and given to another
// test once this one ends.
func URL(tb testing.TB) string {
	tb.Helper()
	once.Do(start)
	if startErr != nil {
		tb.Fatalf("no Redis for the tests: %v", startErr)
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	opt.DB = lease(tb, opt)
	return urlOf(opt)
}

// lease returns the test's database, leasing and emptying one on its first
// call.
func lease(tb testing.TB, opt *redis.Options) int {
	tb.Helper()
	leaseMu.Lock()
	db, ok := leased[tb]
	leaseMu.Unlock()
	if ok {
		return db
	}
	db = <-unleased
	leaseMu.Lock()
	leased[tb] = db
	leaseMu.Unlock()
	tb.Cleanup(func() {
		leaseMu.Lock()
		delete(leased, tb)
		leaseMu.Unlock()
		unleased <- db
	})
	o := *opt
	o.DB = db
	c := redis.NewClient(&o)
	defer c.Close()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		tb.Fatalf("emptying database %d of the test Redis: %v", db, err)
	}
	return db
}

// urlOf is the URL of the options' server and database (with the
// password, when the environment's Redis has one).
func urlOf(opt *redis.Options) string {
	auth := ""
	if opt.Password != "" {
		auth = ":" + opt.Password + "@"
		if opt.Username != "" {
			auth = opt.Username + auth
		}
	}
	return fmt.Sprintf("redis://%s%s/%d", auth, opt.Addr, opt.DB)
}

// Client returns a client of the test's own database (see URL), closed
// when the test ends.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(URL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { c.Close() })
	return c
}

// freeDatabases fills the pool of databases to lease.
func freeDatabases(n int) {
	unleased = make(chan int, n)
	for db := range n {
		unleased <- db
	}
}

func start() {
	if u := os.Getenv("IMPORTER_TEST_REDIS_URL"); u != "" {
		url = u
		freeDatabases(16)
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
			freeDatabases(databases)
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
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		"--databases", strconv.Itoa(databases))
	freeDatabases(databases)
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
