package importer_test

import (
	"testing"

	"github.com/propexo-importer/importer/importer"
)

func TestReadableErrors(t *testing.T) {
	got := importer.ReadableErrors([]any{
		`{"Message":"Unit is occupied","StatusCode":409}`,
		`"{\"error\":\"double encoded\"}"`,
		"plain text",
		map[string]any{"detail": "an object"},
		map[string]any{"weird": 1},
	})
	want := []string{"Unit is occupied (409)", "double encoded", "plain text", "an object", `{"weird":1}`}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ReadableErrors[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}
