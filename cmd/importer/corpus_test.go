package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/source"
)

var update = flag.Bool("update", false, "rewrite the corpus's golden files")

// The hostile-input corpus: every file ends with a one-sentence error
// naming the file and the line (exit 2) or with per-row outcomes, the rest
// of the file read (exit 0 or 1). None panics or hangs. The expected result
// of each is its .golden file; go test -run Corpus -update rewrites them.
func TestCorpus(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "corpus")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The largest file of the corpus is made here rather than kept in git.
	huge := filepath.Join(t.TempDir(), "huge-field.csv")
	os.WriteFile(huge, []byte("Integration ID,First Name,Last Name,Notes\nint_rentvine_demo,Ada,Lovelace,"+strings.Repeat("x", 10<<20)+"\nint_rentvine_demo,Bo,Li,short\n"), 0o600)
	inputs := []string{huge, dir, filepath.Join(dir, "missing.csv")} // a folder and a missing file, too
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".golden") {
			inputs = append(inputs, filepath.Join(dir, e.Name()))
		}
	}
	if len(inputs) < 40 {
		t.Fatalf("the corpus holds %d inputs, want at least 40", len(inputs))
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		if in == dir {
			name = "folder"
		}
		t.Run(name, func(t *testing.T) {
			got := dryRun(t, in)
			golden := filepath.Join(dir, name+".golden")
			if *update {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run Corpus -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(got, "goroutine ") || strings.Contains(got, "panic") {
				t.Error("a stack trace")
			}
			if strings.HasPrefix(got, "exit 2\n") && strings.Count(strings.TrimSpace(strings.SplitN(got, "stderr:\n", 2)[1]), "\n") > 1 {
				t.Error("a refused file must be told in one sentence")
			}
		})
	}
}

// dryRun validates a file as 'importer run --dry-run' does, in this process,
// and renders the exit code and the output with the temporary folder hidden.
func dryRun(t *testing.T, path string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"run", "--dry-run", path}, flags...), func(string) string { return "" }, &stdout, &stderr)
	}()
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatalf("%s: the dry run hung", path)
	}
	out := fmt.Sprintf("exit %d\nstdout:\n%sstderr:\n%s", code, stdout.String(), stderr.String())
	return strings.ReplaceAll(out, filepath.Dir(path)+string(filepath.Separator), "")
}

// Reading a file stops at Ctrl-C: a dry run of a big file interrupted at
// once ends with exit 130 and one line, having sent nothing.
func TestReadingStopsOnInterrupt(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "big.csv")
	var b strings.Builder
	b.WriteString("Integration ID,First Name,Last Name\n")
	for i := 0; i < 50000; i++ {
		fmt.Fprintf(&b, "int_rentvine_demo,Resident,Number%d\n", i)
	}
	os.WriteFile(path, []byte(b.String()), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, []string{"run", "--dry-run", path}, func(string) string { return "" }, &stdout, &stderr)
	if code != exitInterrupted || !strings.Contains(stderr.String(), "interrupted") || strings.Count(stdout.String(), "\n") > 0 {
		t.Errorf("exit %d, %d lines printed, stderr %q; want 130 before any row", code, strings.Count(stdout.String(), "\n"), stderr.String())
	}
}

// --delimiter reads a file separated by another character.
func TestDelimiterFlag(t *testing.T) {
	t.Parallel()
	got := dryRun(t, filepath.Join("testdata", "corpus", "semicolon-delimited.csv"), "--delimiter", ";")
	if !strings.HasPrefix(got, "exit 0\n") || !strings.Contains(got, `"first_name":"Ada"`) {
		t.Errorf("with --delimiter ';':\n%s", got)
	}
	if got := dryRun(t, filepath.Join("testdata", "corpus", "semicolon-delimited.csv"), "--delimiter", "ab"); !strings.Contains(got, "exit 2") || !strings.Contains(got, "use one character") {
		t.Errorf("--delimiter ab:\n%s", got)
	}
}

// The samples share no resident: trying them in turn against one API
// creates nobody twice.
func TestSamplesShareNoResident(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, name := range []string{"residents.csv", "residents.json", "residents.ndjson", "residents-with-errors.csv"} {
		f, err := source.OpenFile(filepath.Join("..", "..", "samples", name), "", 0, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		inFile := map[string]bool{}
		for {
			row, err := f.Next()
			if err != nil {
				break
			}
			who := strings.ToLower(row.Values["email_1"])
			if who == "" || inFile[who] {
				continue // the errors sample repeats a row of its own on purpose
			}
			inFile[who] = true
			if other, ok := seen[who]; ok {
				t.Errorf("%s is in %s and %s", who, other, name)
			}
			seen[who] = name
		}
		f.Close()
	}
	if len(seen) < 70 {
		t.Errorf("%d residents in the samples; the test read less than it should", len(seen))
	}
}
