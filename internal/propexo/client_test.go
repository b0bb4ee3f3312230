package propexo_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
)

const key = "test-key-123"

func newSandbox(t *testing.T, cfg sandbox.Config) (*propexo.Client, *sandbox.Server, *sandbox.ManualClock) {
	t.Helper()
	clk := sandbox.NewManualClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	cfg.APIKey, cfg.Now = key, clk.Now
	if cfg.Latency == (sandbox.Latency{}) {
		cfg.Latency, _ = sandbox.ParseLatency("fixed:10s")
	}
	sb := sandbox.New(cfg)
	srv := httptest.NewServer(sb.Handler())
	t.Cleanup(srv.Close)
	client, err := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return client, sb, clk
}

var ada = importer.Resident{
	IntegrationID: "int_rentmanager_demo", PropertyID: "prop_100", FirstName: "Ada", LastName: "Lovelace",
	Email1: "ada@example.com", DateOfBirth: "1990-04-12T00:00:00Z", RentPeriod: "MONTHLY", RentDueDay: 1,
}

func TestCreateThenStatusThenRead(t *testing.T) {
	ctx := context.Background()
	client, sb, clk := newSandbox(t, sandbox.Config{})
	jobID, err := client.CreateResident(ctx, importer.VendorRentManager, ada)
	if err != nil || jobID == "" {
		t.Fatalf("CreateResident = %q, %v", jobID, err)
	}
	st, err := client.WriteStatus(ctx, jobID)
	if err != nil || st.State != importer.WritePending || st.CreatedRecordID != "" {
		t.Fatalf("WriteStatus right after the create = %+v, %v; want PENDING", st, err)
	}
	if found, _ := client.FindResidents(ctx, importer.QueryFor(ada)); len(found) != 0 {
		t.Fatalf("resident listed before the write resolved: %+v", found)
	}
	clk.Add(11 * time.Second)
	st, err = client.WriteStatus(ctx, jobID)
	if err != nil || st.State != importer.WriteSuccess || st.CreatedRecordID == "" {
		t.Fatalf("WriteStatus after the latency = %+v, %v; want SUCCESS with a record id", st, err)
	}
	rec, err := client.GetResident(ctx, st.CreatedRecordID)
	if err != nil || rec.ID != st.CreatedRecordID || rec.FirstName != "Ada" || rec.Email1 != ada.Email1 {
		t.Fatalf("GetResident = %+v, %v", rec, err)
	}
	found, err := client.FindResidents(ctx, importer.ResidentQuery{IntegrationID: ada.IntegrationID, Email: "ADA@example.com"})
	if err != nil || len(found) != 1 || found[0].ID != rec.ID {
		t.Fatalf("FindResidents = %+v, %v", found, err)
	}
	if got := sb.Stats(); got.Creates != 1 || got.ResidentsCreated != 1 || got.Requests["write_status"] != 2 {
		t.Errorf("sandbox stats = %+v", got)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	ctx := context.Background()
	client, _, _ := newSandbox(t, sandbox.Config{})
	tests := []struct {
		name     string
		vendor   importer.Vendor
		resident importer.Resident
		kind     importer.ErrorKind
		status   int
		message  string
	}{
		{name: "missing required field", vendor: importer.VendorRentManager, resident: importer.Resident{IntegrationID: "int_rentmanager_demo", FirstName: "Ada"},
			kind: importer.KindRejected, status: 400, message: "last_name: Required"},
		{name: "date not a timestamp", vendor: importer.VendorGeneric, resident: func() importer.Resident { r := ada; r.DateOfBirth = "1990-04-12"; return r }(),
			kind: importer.KindRejected, status: 400, message: "date_of_birth: Invalid datetime"},
		{name: "unknown integration", vendor: importer.VendorGeneric, resident: importer.Resident{IntegrationID: "nope"},
			kind: importer.KindRejected, status: 400, message: "integration_id: Integration not found"},
		{name: "vendor that cannot create", vendor: importer.VendorGeneric, resident: importer.Resident{IntegrationID: "int_yardi_demo"},
			kind: importer.KindRejected, status: 405, message: "yardi does not support creating residents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.CreateResident(ctx, tt.vendor, tt.resident)
			var apiErr *importer.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error = %v, want an *APIError", err)
			}
			if apiErr.Kind != tt.kind || apiErr.Status != tt.status || !strings.Contains(apiErr.Message, tt.message) || apiErr.MaybeSent {
				t.Errorf("error = %+v (%v), want kind %v status %d message containing %q", apiErr, err, tt.kind, tt.status, tt.message)
			}
		})
	}
	if _, err := client.WriteStatus(ctx, "job_unknown"); !isKind(err, importer.KindNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	if _, err := client.GetResident(ctx, "res_unknown"); !isKind(err, importer.KindNotFound) {
		t.Errorf("unknown resident: %v", err)
	}
}

func isKind(err error, kind importer.ErrorKind) bool {
	k, ok := importer.ErrorKindOf(err)
	return ok && k == kind
}

func TestWrongKeyIsUnauthorizedAndNeverShown(t *testing.T) {
	sb := sandbox.New(sandbox.Config{APIKey: key})
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	client, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: "wrong-secret-value"})
	_, err := client.CreateResident(context.Background(), importer.VendorGeneric, ada)
	if !isKind(err, importer.KindUnauthorized) {
		t.Fatalf("error = %v, want unauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-value") {
		t.Errorf("the key shows in the error: %v", err)
	}
	if sb.Stats().Creates != 0 {
		t.Error("a create with a wrong key was accepted")
	}
}

func TestServerErrorsAndLostAnswers(t *testing.T) {
	var current atomic.Value
	setMode := func(m string) { current.Store(m) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch current.Load() {
		case "503":
			w.WriteHeader(http.StatusServiceUnavailable)
		case "502-html":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		case "504-json":
			w.WriteHeader(http.StatusGatewayTimeout)
			w.Write([]byte(`{"message":"Endpoint request timed out"}`))
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error":{"code":"internal_server_error","message":"Internal server error"}}`))
		case "429":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"error":{"code":"rate_limited","message":"Too many requests"}}`))
		case "drop":
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		case "old":
			w.Write([]byte(`{"job_id":"job_old","data":{}}`))
		}
	}))
	defer srv.Close()
	client, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: key})
	ctx := context.Background()

	// Any 5xx to a create may come after the write took effect: it is
	// "maybe sent". A 5xx to a read is not.
	var apiErr *importer.APIError
	for _, mode := range []string{"503", "502-html", "504-json", "500"} {
		setMode(mode)
		_, err := client.CreateResident(ctx, importer.VendorGeneric, ada)
		if !errors.As(err, &apiErr) || apiErr.Kind != importer.KindUnavailable || !apiErr.MaybeSent || apiErr.Status < 500 {
			t.Errorf("%s to a create: %+v; want unavailable and MaybeSent", mode, apiErr)
		}
		_, err = client.WriteStatus(ctx, "job_1")
		if !errors.As(err, &apiErr) || apiErr.Kind != importer.KindUnavailable || apiErr.MaybeSent {
			t.Errorf("%s to a status read: %+v; want unavailable, not MaybeSent", mode, apiErr)
		}
	}
	setMode("429")
	_, err := client.CreateResident(ctx, importer.VendorGeneric, ada)
	if !errors.As(err, &apiErr) || apiErr.Kind != importer.KindRateLimited || apiErr.RetryAfter != 7*time.Second {
		t.Errorf("429: %+v", apiErr)
	}
	setMode("drop")
	_, err = client.CreateResident(ctx, importer.VendorGeneric, ada)
	if !errors.As(err, &apiErr) || apiErr.Kind != importer.KindUnavailable || !apiErr.MaybeSent {
		t.Errorf("dropped connection after the request was written: %+v; want unavailable and MaybeSent", apiErr)
	}
	setMode("old")
	if jobID, err := client.CreateResident(ctx, importer.VendorGeneric, ada); jobID != "job_old" || err != nil {
		t.Errorf("older answer shape: %q, %v", jobID, err)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	client, _ = propexo.New(propexo.Config{BaseURL: closed.URL, APIKey: key})
	_, err = client.CreateResident(ctx, importer.VendorGeneric, ada)
	if !errors.As(err, &apiErr) || apiErr.Kind != importer.KindUnavailable || apiErr.MaybeSent {
		t.Errorf("refused connection: %+v; want unavailable and certainly not sent", apiErr)
	}
}

func TestFailureErrorsAreMadeReadable(t *testing.T) {
	ctx := context.Background()
	client, _, clk := newSandbox(t, sandbox.Config{})
	r := ada
	r.PropertyID = "prop_999"
	jobID, err := client.CreateResident(ctx, importer.VendorRentManager, r)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	st, err := client.WriteStatus(ctx, jobID)
	if err != nil || st.State != importer.WriteFailure {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if len(st.Errors) != 1 || st.Errors[0] != `Property "prop_999" was not found in Rent Manager (400)` {
		t.Errorf("errors = %q", st.Errors)
	}
}

func TestNewChecksItsConfig(t *testing.T) {
	for _, cfg := range []propexo.Config{{APIKey: "k"}, {BaseURL: "ftp://x", APIKey: "k"}, {BaseURL: "http://x"}} {
		if _, err := propexo.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}

// Where the documents leave the API's answers open, the client reads every
// variant the sandbox plays: the write's answer in either shape, a list
// whose hasMore is null and total missing, an unknown job as 404 or 400,
// and created_record_id null or another object's.
func TestDocumentedVariants(t *testing.T) {
	ctx := context.Background()
	for _, v := range []sandbox.Variants{
		{},
		{CreateAnswer: sandbox.AnswerLegacy, HasMore: sandbox.HasMoreNull, UnknownJobStatus: 400, CreatedRecordID: sandbox.RecordNull},
		{CreatedRecordID: sandbox.RecordOther},
	} {
		t.Run(fmt.Sprintf("%+v", v), func(t *testing.T) {
			client, _, clk := newSandbox(t, sandbox.Config{Variants: v, RateLimit: -1})
			var jobIDs []string
			for i := range importer.ListPageSize + 3 { // a full page and a short one
				r := ada
				r.Email1 = fmt.Sprintf("ada%d@example.com", i)
				jobID, err := client.CreateResident(ctx, importer.VendorRentManager, r)
				if err != nil || jobID == "" {
					t.Fatalf("CreateResident = %q, %v", jobID, err)
				}
				jobIDs = append(jobIDs, jobID)
			}
			clk.Add(11 * time.Second)
			st, err := client.WriteStatus(ctx, jobIDs[0])
			if err != nil || st.State != importer.WriteSuccess {
				t.Fatalf("WriteStatus = %+v, %v", st, err)
			}
			_, readErr := client.GetResident(ctx, st.CreatedRecordID)
			switch v.CreatedRecordID {
			case sandbox.RecordNull:
				if st.CreatedRecordID != "" {
					t.Errorf("created_record_id null read as %q", st.CreatedRecordID)
				}
			case sandbox.RecordOther:
				if st.CreatedRecordID == "" || !isKind(readErr, importer.KindNotFound) {
					t.Errorf("another object's id %q reads back as a resident (%v)", st.CreatedRecordID, readErr)
				}
			default:
				if readErr != nil {
					t.Errorf("the created record does not read back: %v", readErr)
				}
			}
			var all []importer.ResidentRecord
			for offset := 0; ; {
				page, more, _, err := client.ListResidents(ctx, importer.ListScope{IntegrationID: ada.IntegrationID}, offset)
				if err != nil {
					t.Fatal(err)
				}
				all, offset = append(all, page...), offset+len(page)
				if !more {
					break
				}
			}
			if len(all) != len(jobIDs) || all[0].Email1 != "ada0@example.com" {
				t.Errorf("listed %d residents (first %q), want %d oldest first", len(all), all[0].Email1, len(jobIDs))
			}
			if _, err := client.WriteStatus(ctx, "job_unknown"); !isKind(err, importer.KindNotFound) {
				t.Errorf("unknown job: %v, want not found", err)
			}
		})
	}
}
