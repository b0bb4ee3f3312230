package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/redistest"
)

// This file is the harness of the package's end-to-end tests. They run the
// importer binary, built once (with the race detector when
// IMPORTER_E2E_RACE is set), each command in its test's folder
// (runImporter, runImporterWithInput, background), so that tests that
// share nothing run in parallel.

// binary is the importer built once for the tests, which run it as a
// process.
var binary string

// repoRoot is the repository's folder, found before any test changes the
// working directory (runImporter runs the importer in a test's folder).
var repoRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "importer-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "importer")
	if repoRoot, err = filepath.Abs(filepath.Join("..", "..")); err != nil {
		panic(err)
	}
	// Without the race detector unless asked (make chaos asks): the
	// packages' own tests run under it, and a raced binary in every
	// command of a hundred end-to-end tests costs make test minutes of
	// CPU on a small machine.
	build := []string{"build", "-o", binary, "."}
	if os.Getenv("IMPORTER_E2E_RACE") != "" {
		build = []string{"build", "-race", "-o", binary, "."}
	}
	if out, err := exec.Command("go", build...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the importer: %v\n%s", err, out)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	redistest.Main(m)
}

type result struct {
	code           int
	stdout, stderr string
}

// runImporter runs the importer binary in dir with only the given
// environment (plus PATH and HOME), and fails the test if it does not end
// within 90 seconds. It is a process of its own, with its own working
// folder, so the tests that use it can run in parallel.
func runImporter(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	return runImporterWithInput(t, dir, env, nil, args...)
}

// runImporterWithInput runs the binary in dir with stdin reading from input
// and only the given environment (plus PATH and HOME), and fails the test if
// it does not end within 90 seconds.
func runImporterWithInput(t *testing.T, dir string, env map[string]string, input io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Stdin = input
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("importer %s did not end: %s", strings.Join(args, " "), stderr.String())
	}
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	heldToTheFile(t, stderr.String())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func sample(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(repoRoot, "samples", name)
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return records
}

var reportLine = regexp.MustCompile(`report: (\S+)`)

func reportDir(t *testing.T, dir string, r result) string {
	t.Helper()
	m := reportLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no report path in the output:\n%s\n%s", r.stdout, r.stderr)
	}
	return filepath.Join(dir, m[1])
}

// fast makes the in-process sandbox and the polls quick, so the tests do
// not wait on the defaults meant for people.
var fast = []string{"--sandbox-latency", "uniform:200ms-1500ms", "--poll-initial", "1s", "--rate-limit", "6000"}

// freeAddr returns a loopback address nobody listens on, for a process the
// test starts to listen on. Its port is below the kernel's ephemeral range
// (32768 and up on Linux), which the test servers listening on port 0 and
// every outgoing connection draw from: a port handed out here is not taken
// by one of those before the process binds it. Each is handed out once.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // another program's
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

// handedOut are the ports freeAddr gave this test process.
var handedOut sync.Map

// background starts a long-running subcommand and stops it with SIGTERM at
// the end of the test, checking that it exits 0.
func background(t *testing.T, dir string, env map[string]string, args ...string) *syncBuffer {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A process signalled before it has started to listen for
		// signals dies of the signal: wait until it has said a word.
		for deadline := time.Now().Add(10 * time.Second); out.String() == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("importer %s after SIGTERM: %v\n%s", args[0], err, out.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("importer %s did not stop on SIGTERM", args[0])
		}
		heldToTheFile(t, out.String())
	})
	return out
}

// heldToTheFile fails the test for every departure from the published
// OpenAPI file that a sandbox (in-process or 'importer sandbox') logged in
// a command's output: a request the client sent, or an answer the sandbox
// gave, that the file does not allow.
func heldToTheFile(t testing.TB, output string) {
	t.Helper()
	for _, line := range strings.Split(output, "\n") {
		if strings.Contains(line, sandboxViolation) {
			t.Errorf("the published OpenAPI file is broken: %s", line)
		}
	}
}

// syncBuffer is a buffer a subprocess writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sandboxProcess starts 'importer sandbox' with the key and extra flags on a
// free address, waits until it answers, and returns its address.
func sandboxProcess(t *testing.T, dir, key string, flags ...string) string {
	t.Helper()
	addr := freeAddr(t)
	background(t, dir, map[string]string{"PROPEXO_API_KEY": key}, append([]string{"sandbox", "--addr", addr}, flags...)...)
	waitForHTTP(t, "http://"+addr+"/healthz")
	return addr
}

func waitForHTTP(t *testing.T, url string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
	}
	t.Fatalf("%s did not answer", url)
}
