package fetchtest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Azurite's well-known development account: the emulator accepts it and no
// other (https://learn.microsoft.com/azure/storage/common/storage-use-azurite).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Azurite is Microsoft's Azure Storage emulator's blob service, started by
// a test on a loopback port and stopped with it.
type Azurite struct {
	// Addr is its host:port; ServiceURL, the account's blob endpoint.
	Addr, ServiceURL string
}

// StartAzurite starts azurite-blob (IMPORTER_TEST_AZURITE, or the one
// installed in internal/fetchtest/azurite by 'npm ci' there, as .ci/run
// and 'make test-deps' do) with its data in memory. Without it the test is
// skipped, saying how to install it; under CI it fails.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	bin := os.Getenv("IMPORTER_TEST_AZURITE")
	if bin == "" {
		bin = filepath.Join(moduleRoot(t), "internal", "fetchtest", "azurite", "node_modules", ".bin", "azurite-blob")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Azurite is not installed (%s); CI must install it: npm ci --prefix internal/fetchtest/azurite", bin)
		}
		t.Skipf("Azurite is not installed (make test-deps installs it): the azblob:// test cannot run here")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--blobHost", "127.0.0.1", "--blobPort", port, "--inMemoryPersistence", "--skipApiVersionCheck", "--loose")
	cmd.Dir = t.TempDir() // its debug log and the like, if any
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait() // killed: its exit status says only that
	})
	listening := make(chan bool, 1)
	go func() {
		lines := bufio.NewScanner(out)
		said := false
		for lines.Scan() {
			if !said && strings.Contains(lines.Text(), "successfully listens") {
				listening <- true
				said = true
			}
		}
		close(listening)
	}()
	select {
	case ok := <-listening:
		if !ok {
			t.Fatal("Azurite exited before it listened")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Azurite did not listen within 30 s")
	}
	return &Azurite{Addr: addr, ServiceURL: "http://" + addr + "/" + AzuriteAccount}
}

// moduleRoot is the folder of the module's go.mod, above the test's.
func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}
