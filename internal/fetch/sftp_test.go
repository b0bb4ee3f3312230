package fetch_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/fetchtest"
)

func TestSFTPReadsAFileFromAServerItKnows(t *testing.T) {
	dir := t.TempDir()
	roster := "First Name,Last Name\nAda,Lovelace\n"
	os.MkdirAll(filepath.Join(dir, "exports"), 0o755)
	os.WriteFile(filepath.Join(dir, "exports", "roster.csv"), []byte(roster), 0o600)
	s := fetchtest.StartSFTP(t, dir)
	opts := fetch.Options{SSH: fetch.SSHOptions{KeyFiles: []string{filepath.Join(dir, "no-such-key"), s.KeyFile}, KnownHosts: []string{s.KnownHosts(t, s.HostKey)}}}
	ctx := context.Background()

	r, err := fetch.Open(ctx, "sftp://pms@"+s.Addr+filepath.Join(dir, "exports", "roster.csv"), opts)
	if err != nil {
		t.Fatal(err)
	}
	readWhole(t, r, roster)

	// A missing file, a server whose key known_hosts does not hold, no
	// key to sign in with: each refused in a sentence naming the address.
	_, err = fetch.Open(ctx, "sftp://pms@"+s.Addr+filepath.Join(dir, "missing.csv"), opts)
	if err == nil || !strings.Contains(err.Error(), "cannot read sftp://"+s.Addr) {
		t.Errorf("a missing file: %v", err)
	}
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(otherPub)
	impostor := opts
	impostor.SSH.KnownHosts = []string{s.KnownHosts(t, other)}
	_, err = fetch.Open(ctx, "sftp://pms@"+s.Addr+"/exports/roster.csv", impostor)
	if err == nil || !strings.Contains(err.Error(), "not the one known_hosts holds: refused") {
		t.Errorf("a changed host key: %v", err)
	}
	keyless := opts
	keyless.SSH.KeyFiles = nil
	_, err = fetch.Open(ctx, "sftp://pms@"+s.Addr+"/exports/roster.csv", keyless)
	if err == nil || !strings.Contains(err.Error(), "no SSH key to sign in with") {
		t.Errorf("no key: %v", err)
	}
	_, err = fetch.Open(ctx, "sftp://pms:secret@"+s.Addr+"/exports/roster.csv", opts)
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "a password in the address is not used") {
		t.Errorf("a password in the address: %v", err)
	}
}
