package fetch_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/fetch"
)

func TestAddressesAreShownWithoutTheirCredentials(t *testing.T) {
	for _, tt := range []struct{ in, shown, name string }{
		{"https://exports:pw@files.example.com/nightly/roster.csv?sig=abc&exp=1", "https://files.example.com/nightly/roster.csv", "roster.csv"},
		{"https://files.example.com/export.xlsx", "https://files.example.com/export.xlsx", "export.xlsx"},
	} {
		if !fetch.IsURL(tt.in) {
			t.Errorf("IsURL(%q) = false", tt.in)
		}
		if got := fetch.Redact(tt.in); got != tt.shown {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.shown)
		}
		if got := fetch.Name(tt.in); got != tt.name {
			t.Errorf("Name(%q) = %q, want %q", tt.in, got, tt.name)
		}
	}
	for _, path := range []string{"residents.csv", "-", "./inbox/a.csv", "C:\\exports\\a.csv", "/tmp/x:y.csv"} {
		if fetch.IsURL(path) {
			t.Errorf("IsURL(%q) = true: a path", path)
		}
	}
}

func TestHTTPAndUnreadSchemesAreRefused(t *testing.T) {
	for raw, want := range map[string]string{
		"http://u:secret@example.com/a.csv": "http://example.com/a.csv: use https://",
		"ftp://u:secret@example.com/a.csv":  "ftp://example.com/a.csv: ftp:// cannot be read",
	} {
		_, err := fetch.Open(context.Background(), raw, fetch.Options{})
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) = %v, want %q", raw, err, want)
		}
	}
}

// readWhole reads r to its end, checks it read want, and closes it.
func readWhole(t *testing.T, r io.ReadCloser, want string) {
	t.Helper()
	got, err := io.ReadAll(r)
	if err != nil || string(got) != want {
		t.Errorf("read %q, %v; want %q", got, err, want)
	}
	if err := r.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// failingReader gives some bytes, then fails as a dropped connection does.
type failingReader struct{ given bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if !f.given {
		f.given = true
		return copy(p, "First Name,"), nil
	}
	return 0, errors.New("connection reset by peer")
}

// Spool copies a source to a private file; a source that fails mid-way is
// a *ReadError, and no partial copy is left.
func TestSpool(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	path, err := fetch.Spool(strings.NewReader("First Name,Last Name\n"), "spool-*")
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the copy: %v, mode %v, want 0600", err, info.Mode().Perm())
	}
	_, err = fetch.Spool(&failingReader{}, "spool-*")
	var read *fetch.ReadError
	if !errors.As(err, &read) || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("a failing source: %v, want a *ReadError", err)
	}
	if left, _ := filepath.Glob(filepath.Join(os.Getenv("TMPDIR"), "spool-*")); len(left) != 1 {
		t.Errorf("copies left %v, want the first only", left)
	}
}
