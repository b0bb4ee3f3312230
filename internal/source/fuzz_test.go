package source_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/source"
)

// seedFrom adds the samples and the hostile-input corpus files of a format
// to a fuzz target's seeds.
func seedFrom(f *testing.F, exts ...string) {
	for _, dir := range []string{"../../samples", "../../cmd/importer/testdata/corpus"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			for _, ext := range exts {
				if strings.HasSuffix(e.Name(), ext) {
					if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && len(b) < 1<<20 {
						f.Add(b)
					}
				}
			}
		}
	}
}

// readFuzzed reads every row of data and checks the reader's promises: no
// panic, rows numbered in order, every row either read or with a reason.
func readFuzzed(t *testing.T, data []byte, format string) {
	rd, err := source.Open(strings.NewReader(string(data)), format)
	if err != nil {
		return
	}
	for n := 1; n < 1_000_000; n++ {
		row, err := rd.Next()
		if err != nil {
			return
		}
		if row.Number != n {
			t.Fatalf("row numbered %d, want %d", row.Number, n)
		}
		if row.Err == nil && row.Values == nil {
			t.Fatalf("row %d has neither values nor an error", n)
		}
	}
	t.Fatal("the reader does not end")
}

func FuzzJSON(f *testing.F) {
	seedFrom(f, ".json")
	f.Fuzz(func(t *testing.T, data []byte) { readFuzzed(t, data, source.FormatJSON) })
}
