package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/metrics"
)

// stubAPI answers creates with the errors it is given, in turn.
type stubAPI struct {
	importer.WriteAPI
	errs []error
}

func (s *stubAPI) CreateResident(context.Context, importer.Vendor, importer.Resident) (string, error) {
	err := s.errs[0]
	s.errs = s.errs[1:]
	return "job", err
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestSeries(t *testing.T) {
	m := metrics.New(nil)
	api := m.API(&stubAPI{errs: []error{
		nil,
		&importer.APIError{Kind: importer.KindRateLimited, Status: 429},
		&importer.APIError{Kind: importer.KindRejected, Status: 400},
		&importer.APIError{Kind: importer.KindUnavailable, Err: errors.New("connection refused")},
	}})
	for i := 0; i < 4; i++ {
		api.CreateResident(context.Background(), importer.VendorGeneric, importer.Resident{})
	}
	m.RowResolved(importer.Succeeded)
	m.RowResolved(importer.Succeeded)
	m.WriteResolved(3 * time.Second)
	m.RateLimitWait()
	text := scrape(t, m)
	for _, want := range []string{
		`importer_api_requests_total{endpoint="create_resident",status="200"} 1`,
		`importer_api_requests_total{endpoint="create_resident",status="429"} 1`,
		`importer_api_requests_total{endpoint="create_resident",status="400"} 1`,
		`importer_api_requests_total{endpoint="create_resident",status="error"} 1`,
		`importer_api_rate_limited_total 1`,
		`importer_api_request_duration_seconds_count{endpoint="create_resident"} 4`,
		`importer_rows_resolved_total{outcome="succeeded"} 2`,
		`importer_rows_resolved_total{outcome="failed"} 0`,
		`importer_write_resolution_seconds_sum 3`,
		`importer_rate_limit_waits_total 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
