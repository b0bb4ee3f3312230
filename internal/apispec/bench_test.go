package apispec_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/apispec"
)

func BenchmarkCheck(b *testing.B) {
	s, _ := apispec.Published()
	b.Run("status request", func(b *testing.B) {
		r := httptest.NewRequest("GET", "http://h/v1/admin/write-status/job_1", nil)
		r.Header.Set("Authorization", "Bearer k")
		for b.Loop() {
			s.Request(r, nil)
		}
	})
	b.Run("status answer", func(b *testing.B) {
		r := httptest.NewRequest("GET", "http://h/v1/admin/write-status/job_1", nil)
		body := []byte(`{"write_status":"SUCCESS","errors":[],"created_record_id":"res_1"}`)
		h := http.Header{"Content-Type": {"application/json"}}
		for b.Loop() {
			s.Answer(r, 200, h, body)
		}
	})
	b.Run("create request", func(b *testing.B) {
		body := []byte(`{"integration_id":"i","first_name":"A","last_name":"B","email_1":"a@example.com","rent_due_day":5,"rent_period":"MONTHLY","property_id":"p"}`)
		r := httptest.NewRequest("POST", "http://h/v1/residents/", strings.NewReader(""))
		r.Header.Set("Authorization", "Bearer k")
		r.Header.Set("Content-Type", "application/json")
		for b.Loop() {
			s.Request(r, body)
		}
	})
}
