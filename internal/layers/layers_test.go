package layers_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/propexo-importer/importer/"

// allowed says whether a package of ours may import another of ours.
func allowed(from, to string) bool {
	switch {
	case from == "importer":
		return false // the domain imports nothing of ours
	case strings.HasSuffix(from, "test") && strings.HasPrefix(from, "internal/"):
		// A test helper (redistest, sandboxtest) serves the technology it
		// is named after.
		return to == "importer" || to == strings.TrimSuffix(from, "test") || to == "internal/apispec"
	case from == "internal/sandbox":
		// The sandbox plays the published file, which apispec holds.
		return to == "importer" || to == "internal/apispec"
	case strings.HasPrefix(from, "internal/"):
		return to == "importer" // a technology imports the domain only
	case from == "jobs":
		return to == "importer" || strings.HasPrefix(to, "internal/")
	case strings.HasPrefix(from, "cmd/"):
		return !strings.HasPrefix(to, "cmd/")
	}
	return false
}

// Every import of every package (tests left aside) points one way.
func TestImportsPointOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", module+"...").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	packages := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		packages++
		from := strings.TrimPrefix(p.ImportPath, module)
		for _, imp := range p.Imports {
			to, ours := strings.CutPrefix(imp, module)
			if ours && !allowed(from, to) {
				t.Errorf("%s imports %s: imports point importer ← internal/* ← jobs ← cmd, and a technology package imports no other", from, to)
			}
		}
	}
	if packages < 15 {
		t.Fatalf("go list found %d packages: the test looked at less than it should", packages)
	}
}
