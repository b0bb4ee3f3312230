package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/webhook"
)

type recorder struct {
	mu     sync.Mutex
	events []importer.WriteEvent
	fail   bool
}

func (r *recorder) apply(ctx context.Context, ev importer.WriteEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("redis is down")
	}
	r.events = append(r.events, ev)
	return nil
}

func post(t *testing.T, h http.Handler, body, signature string) int {
	t.Helper()
	req := httptest.NewRequest("POST", "/webhooks/propexo", strings.NewReader(body))
	if signature != "" {
		req.Header.Set("propexo-signature", signature)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

const secret = "whsec_test"

func TestSignature(t *testing.T) {
	rec := &recorder{}
	rc, err := webhook.NewReceiver(secret, rec.apply, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"event":"DATA_NEW","object":"residents","record_id":"res_1","root_job_id":"job_1","job_id":"sync_9"}`
	tests := []struct {
		name      string
		signature string
		want      int
	}{
		{"good", sandbox.Signature(secret, []byte(body)), 204},
		{"upper case hex", strings.ToUpper(sandbox.Signature(secret, []byte(body))), 204},
		{"missing", "", 401},
		{"other secret", sandbox.Signature("other", []byte(body)), 401},
		{"signature of another body", sandbox.Signature(secret, []byte(body+" ")), 401},
		{"not hex", "zz", 401},
		{"truncated", sandbox.Signature(secret, []byte(body))[:40], 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.events = nil
			if got := post(t, rc, body, tt.signature); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
			if recorded := len(rec.events) > 0; recorded != (tt.want == 204) {
				t.Errorf("recorded %v with status %d", rec.events, tt.want)
			}
		})
	}
	if _, err := webhook.NewReceiver("", rec.apply, nil); err == nil {
		t.Error("a receiver without a secret")
	}
}

func TestBodyIsBounded(t *testing.T) {
	rc, _ := webhook.NewReceiver(secret, (&recorder{}).apply, nil)
	big := `{"event":"DATA_NEW","pad":"` + strings.Repeat("x", webhook.MaxBody) + `"}`
	if got := post(t, rc, big, sandbox.Signature(secret, []byte(big))); got != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", got)
	}
}

func TestApplyFailureAsksForARetry(t *testing.T) {
	rec := &recorder{fail: true}
	rc, _ := webhook.NewReceiver(secret, rec.apply, nil)
	body := `{"event":"DATA_NEW","root_job_id":"job_1","record_id":"r"}`
	if got := post(t, rc, body, sandbox.Signature(secret, []byte(body))); got != 503 {
		t.Errorf("status %d, want 503 so the sender retries", got)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want importer.WriteEvent
		ok   bool
	}{
		{"failure nested", `{"trigger":"WRITE_OPERATION_FAILURE","data":{"event":"WRITE_OPERATION_FAILURE","root_job_id":"j1","write_status":"FAILURE","errors":["{\"Message\":\"Unit occupied\"}"]}}`,
			importer.WriteEvent{JobID: "j1", State: importer.WriteFailure, Errors: []string{"Unit occupied"}}, true},
		{"partial flat", `{"event":"WRITE_OPERATION_FAILURE","root_job_id":"j2","write_status":"PARTIAL_SUCCESS","errors":[]}`,
			importer.WriteEvent{JobID: "j2", State: importer.WritePartialSuccess, Errors: []string{}}, true},
		{"trigger only", `{"trigger":"WRITE_OPERATION_FAILURE","data":{"root_job_id":"j3","write_status":"FAILURE"}}`,
			importer.WriteEvent{JobID: "j3", State: importer.WriteFailure, Errors: []string{}}, true},
		{"data new", `{"event":"DATA_NEW","object":"residents","record_id":"res_1","root_job_id":"j4","job_id":"sync_1"}`,
			importer.WriteEvent{JobID: "j4", State: importer.WriteSuccess, RecordID: "res_1"}, true},
		{"data new without root job id", `{"event":"DATA_NEW","object":"residents","record_id":"res_1","job_id":"j5"}`,
			importer.WriteEvent{JobID: "j5", State: importer.WriteSuccess, RecordID: "res_1"}, true},
		{"data new flat, as documented", `{"context":{"property_id":"p1"},"event":"DATA_NEW","integration_id":"int_1","object":"residents","record_id":"res_2","root_job_id":"sync_7","job_id":"job_8","job_type":"SYNC","vendor":"BUILDIUM","meta":{},"payload":{"email_1":"Ada@Example.com","x_id":"4675"}}`,
			importer.WriteEvent{JobID: "sync_7", State: importer.WriteSuccess, RecordID: "res_2", IntegrationID: "int_1", Email: "Ada@Example.com", XID: "4675"}, true},
		{"data new of leases", `{"event":"DATA_NEW","object":"leases","record_id":"l","root_job_id":"j6"}`, importer.WriteEvent{}, false},
		{"sync complete", `{"event":"SYNC_COMPLETE"}`, importer.WriteEvent{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := webhook.Parse([]byte(tt.body))
			if err != nil || ok != tt.ok {
				t.Fatalf("Parse = %+v, %v, %v", got, ok, err)
			}
			if ok && (got.JobID != tt.want.JobID || got.State != tt.want.State || got.RecordID != tt.want.RecordID || strings.Join(got.Errors, "|") != strings.Join(tt.want.Errors, "|") ||
				got.IntegrationID != tt.want.IntegrationID || got.Email != tt.want.Email || got.XID != tt.want.XID) {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`not json`, `{"event":"DATA_NEW","record_id":"r"}`} {
		if _, _, err := webhook.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) accepted it", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"trigger":"WRITE_OPERATION_FAILURE","data":{"root_job_id":"j","write_status":"FAILURE","errors":["x"]}}`))
	f.Add([]byte(`{"event":"DATA_NEW","root_job_id":"j","record_id":"r"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, ok, err := webhook.Parse(body)
		if ok && (err != nil || ev.JobID == "") {
			t.Fatalf("ok with %+v, %v", ev, err)
		}
	})
}
