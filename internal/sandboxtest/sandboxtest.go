// Package sandboxtest serves the sandbox to a test over real HTTP and holds
// the test to the published OpenAPI file: every request the client sends
// and every answer the sandbox gives is checked against it (see
// internal/apispec), and the test fails on each violation, whichever side
// made it.
package sandboxtest

import (
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/propexo-importer/importer/internal/apispec"
	"github.com/propexo-importer/importer/internal/sandbox"
)

// Serve starts a sandbox with cfg on a loopback HTTP server, stopped at the
// end of the test; the test then fails on every violation of the
// published file the sandbox saw. A cfg.OnViolation of the test's own is
// told them instead (a test that sends an off-file request on purpose).
func Serve(t testing.TB, cfg sandbox.Config) (*sandbox.Server, *httptest.Server) {
	t.Helper()
	var (
		mu    sync.Mutex
		found []apispec.Violation
	)
	if cfg.OnViolation == nil {
		cfg.OnViolation = func(v apispec.Violation) {
			mu.Lock()
			found = append(found, v)
			mu.Unlock()
		}
	}
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(func() {
		srv.Close() // every request answered: nothing is told after this
		sb.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, v := range found {
			t.Errorf("the published OpenAPI file is broken: %v", v)
		}
	})
	return sb, srv
}
