package main

import (
	"bytes"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/propexo-importer/importer/internal/fetchtest"
)

// 'importer run https://...' imports the roster at the address: its
// credentials (the URL's user info, a signed URL's query) reach the server
// and nothing the user sees or keeps; an address that answers 404 is
// refused in one sentence, naming it without them.
func TestRunAFileAtAnHTTPSAddress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	roster, err := os.ReadFile(sample(t, "residents.csv"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		switch {
		case !ok || user != "exports" || pass != "PASSWORDSECRET" || r.URL.Query().Get("sig") != "SIGSECRET":
			http.Error(w, "forbidden", http.StatusForbidden)
		case r.URL.Path == "/nightly/residents.csv":
			w.Write(roster)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	// The binary trusts the test server's certificate as it would a CA's.
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	env := map[string]string{"SSL_CERT_FILE": ca}
	address := strings.Replace(srv.URL, "https://", "https://exports:PASSWORDSECRET@", 1)

	r := runImporter(t, dir, env, append([]string{"run", address + "/nightly/residents.csv?sig=SIGSECRET"}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "50 succeeded") {
		t.Fatalf("exit %d, want 0 and 50 succeeded\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	kept := r.stdout + r.stderr
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			kept += string(b)
		}
		return nil
	})
	if strings.Contains(kept, "SECRET") {
		t.Errorf("a credential of the address reached the output or a file the run kept")
	}

	r = runImporter(t, dir, env, "run", "--dry-run", address+"/nightly/missing.csv?sig=SIGSECRET")
	if r.code != 2 || !strings.Contains(r.stderr, "cannot read "+srv.URL+"/nightly/missing.csv: the server answered 404 Not Found") || strings.Contains(r.stderr, "SECRET") {
		t.Errorf("a missing file: exit %d\n%s", r.code, r.stderr)
	}
	r = runImporter(t, dir, env, "run", "--dry-run", strings.Replace(address, "https://", "http://", 1)+"/nightly/residents.csv")
	if r.code != 2 || !strings.Contains(r.stderr, "use https://") {
		t.Errorf("an http:// address: exit %d\n%s", r.code, r.stderr)
	}
}

// 'importer run sftp://user@host/path' imports the roster on an SFTP
// server, signing in with the key IMPORTER_SSH_KEY names and checking the
// server's key against IMPORTER_SSH_KNOWN_HOSTS; a server known_hosts does
// not know is refused before anything is read.
func TestRunAFileOnAnSFTPServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	exports := filepath.Join(dir, "exports")
	os.MkdirAll(exports, 0o755)
	roster, err := os.ReadFile(sample(t, "residents.json"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(exports, "residents.json"), roster, 0o600)
	s := fetchtest.StartSFTP(t, exports)
	env := map[string]string{"IMPORTER_SSH_KEY": s.KeyFile, "IMPORTER_SSH_KNOWN_HOSTS": s.KnownHosts(t, s.HostKey)}
	address := "sftp://pms@" + s.Addr + filepath.Join(exports, "residents.json")

	r := runImporter(t, dir, env, append([]string{"run", address}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "12 succeeded") {
		t.Fatalf("exit %d, want 0 and 12 succeeded\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	env["IMPORTER_SSH_KNOWN_HOSTS"] = filepath.Join(dir, "empty_known_hosts")
	os.WriteFile(env["IMPORTER_SSH_KNOWN_HOSTS"], nil, 0o600)
	r = runImporter(t, dir, env, "run", "--dry-run", address)
	if r.code != 2 || !strings.Contains(r.stderr, "the server's key is not in known_hosts") {
		t.Errorf("an unknown server: exit %d\n%s", r.code, r.stderr)
	}
}

// 'importer run s3://bucket/key' imports the object, with the AWS
// credentials the environment gives; the address is shown without its
// query (here, the endpoint of the S3-compatible store).
func TestRunAnObjectInAnS3Bucket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	roster, err := os.ReadFile(sample(t, "residents.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	store := s3mem.New()
	store.CreateBucket("exports")
	if _, err := store.PutObject("exports", "nightly/residents.ndjson", map[string]string{}, bytes.NewReader(roster), int64(len(roster)), nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(store).Server())
	t.Cleanup(srv.Close)
	env := map[string]string{"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "AWSSECRET", "AWS_REGION": "us-east-1"}
	address := "s3://exports/nightly/residents.ndjson?endpoint=" + srv.URL + "&use_path_style=true&disable_https=true"

	r := runImporter(t, dir, env, append([]string{"run", address}, fast...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "12 succeeded") {
		t.Fatalf("exit %d, want 0 and 12 succeeded\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "AWSSECRET") || strings.Contains(r.stdout+r.stderr, srv.URL) {
		t.Errorf("the output shows a credential or the address's query:\n%s\n%s", r.stdout, r.stderr)
	}
}
