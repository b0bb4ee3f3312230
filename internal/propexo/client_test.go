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
	"github.com/propexo-importer/importer/internal/apispec"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
)

const key = "test-key-123"

func newSandbox(t *testing.T, cfg sandbox.Config) (*propexo.Client, *sandbox.Server, *sandbox.ManualClock) {
	t.Helper()
	return newSandboxWith(t, cfg, checkedClient(t))
}

// newSandboxWith is newSandbox with the client's own HTTP client: a plain
// one, with cfg.OnViolation set, for a test that sends what the file
// refuses on purpose.
func newSandboxWith(t *testing.T, cfg sandbox.Config, hc *http.Client) (*propexo.Client, *sandbox.Server, *sandbox.ManualClock) {
	t.Helper()
	clk := sandbox.NewManualClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))
	cfg.APIKey, cfg.Now = key, clk.Now
	if cfg.Latency == (sandbox.Latency{}) {
		cfg.Latency, _ = sandbox.ParseLatency("fixed:10s")
	}
	sb, srv := sandboxtest.Serve(t, cfg)
	client, err := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: key, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return client, sb, clk
}

// checkedClient is an HTTP client whose every request is checked against
// the published OpenAPI file, whatever server answers it; the test fails
// on a request that departs from it.
func checkedClient(t *testing.T) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &apispec.Transport{Report: func(v apispec.Violation) {
		t.Errorf("the client's request departs from the published OpenAPI file: %v", v)
	}}}
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
	var refused []apispec.Violation // the date's, on purpose
	client, _, _ := newSandboxWith(t, sandbox.Config{OnViolation: func(v apispec.Violation) { refused = append(refused, v) }}, http.DefaultClient)
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
			kind: importer.KindRejected, status: 400, message: "date_of_birth: '1990-04-12' is not valid date-time"},
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
	if len(refused) != 1 || refused[0].Field != "date_of_birth" {
		t.Errorf("violations of the file: %v, want only the date sent as a day", refused)
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
		{CreateAnswer: sandbox.AnswerMeta, HasMore: sandbox.HasMoreNull, UnknownJobStatus: 400, CreatedRecordID: sandbox.RecordNull},
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

// An update goes through the generic PUT in its schema's terms, and reads
// back; rent_due_day goes as a number; the read model has no rent terms.
func TestUpdateThroughTheGenericPUT(t *testing.T) {
	ctx := context.Background()
	client, sb, clk := newSandbox(t, sandbox.Config{RateLimit: -1})
	jobID, err := client.CreateResident(ctx, importer.VendorRentManager, ada)
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(11 * time.Second)
	st, err := client.WriteStatus(ctx, jobID)
	if err != nil || st.CreatedRecordID == "" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	jobID, err = client.UpdateResident(ctx, st.CreatedRecordID, map[string]string{"phone_1": "5559990000", "phone_1_type": "MOBILE", "rent_due_day": "5", "state": "ON"})
	if err != nil {
		t.Fatalf("UpdateResident: %v", err)
	}
	clk.Add(11 * time.Second)
	if st, err := client.WriteStatus(ctx, jobID); err != nil || st.State != importer.WriteSuccess {
		t.Fatalf("the update's status = %+v, %v", st, err)
	}
	rec, err := client.GetResident(ctx, st.CreatedRecordID)
	if err != nil || rec.Phone1 != "5559990000" || rec.Phone1Type != "MOBILE" || rec.State != "ON" || rec.RentDueDay != 0 || rec.LastSeen.IsZero() {
		t.Errorf("read back: %+v, %v; want the new phone and state, no rent terms (none are read), a last_seen", rec, err)
	}
	if sb.Stats().Requests["update_resident"] != 1 {
		t.Errorf("stats: %+v", sb.Stats().Requests)
	}
}

// A listing by x_id carries x_property_id (the API needs both); a look-up
// by email asks as written and in lower case, since whether the filter
// ignores case is undocumented.
func TestLookUpsTheAPITakes(t *testing.T) {
	ctx := context.Background()
	client, sb, _ := newSandbox(t, sandbox.Config{RateLimit: -1})
	ids, err := sb.SeedResidents(strings.NewReader(`[
		{"integration_id":"int_rentmanager_demo","property_id":"prop_100","x_id":"7","first_name":"Ada","last_name":"Lovelace","email_1":"ada@example.com"},
		{"integration_id":"int_rentmanager_demo","property_id":"prop_200","x_id":"7","first_name":"Al","last_name":"Other"}]`))
	if err != nil {
		t.Fatal(err)
	}
	page, _, _, err := client.ListResidents(ctx, importer.ListScope{IntegrationID: "int_rentmanager_demo", XID: "7", XPropertyID: sandbox.XPropertyID("prop_200")}, 0)
	if err != nil || len(page) != 1 || page[0].ID != ids[1] {
		t.Errorf("x_id 7 in prop_200: %+v, %v", page, err)
	}
	tallied, sent := importer.WithRequestTally(ctx)
	found, err := client.FindResidents(tallied, importer.ResidentQuery{IntegrationID: "int_rentmanager_demo", Email: "Ada@Example.com"})
	if err != nil || len(found) != 1 || found[0].ID != ids[0] {
		t.Errorf("by email in another case: %+v, %v", found, err)
	}
	if sent() != 2 {
		t.Errorf("the look-up tallied %d requests, want the 2 it sent (each is one of the import's)", sent())
	}
	if got := sb.Stats().Requests["list_residents"]; got != 3 {
		t.Errorf("%d listings, want 3 (x_id; the email as written, then in lower case)", got)
	}
}

// Subscriptions are read as the file answers them (triggers as objects),
// listed active and not, and updated in place.
func TestSubscriptions(t *testing.T) {
	ctx := context.Background()
	client, _, _ := newSandbox(t, sandbox.Config{RateLimit: -1})
	const hook, secret = "https://importer.example.com/webhooks/propexo", "0123456789abc"
	sub, err := client.Subscribe(ctx, hook, secret, []string{"WRITE_OPERATION_FAILURE", "DATA_NEW"}, importer.WebhookModel)
	if err != nil || sub.ID == "" || len(sub.Triggers) != 2 || sub.Model != "residents" || !sub.Active {
		t.Fatalf("Subscribe = %+v, %v", sub, err)
	}
	if plan := importer.PlanSubscription([]importer.WebhookSubscription{sub}, hook, secret); plan != (importer.SubscriptionPlan{ID: sub.ID, Update: true}) {
		t.Errorf("without DATA_UPDATE: %+v, want an update", plan)
	}
	updated, err := client.UpdateSubscription(ctx, sub.ID, secret, importer.WebhookTriggers, importer.WebhookModel)
	if err != nil || updated.ID != sub.ID || len(updated.Triggers) != 3 {
		t.Fatalf("UpdateSubscription = %+v, %v", updated, err)
	}
	subs, err := client.Subscriptions(ctx)
	if err != nil || len(subs) != 1 || importer.PlanSubscription(subs, hook, secret) != (importer.SubscriptionPlan{ID: sub.ID}) {
		t.Errorf("Subscriptions = %+v, %v; want the one, up to date", subs, err)
	}
	if err := client.Unsubscribe(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if subs, err := client.Subscriptions(ctx); err != nil || len(subs) != 0 {
		t.Errorf("after delete: %+v, %v", subs, err)
	}
}
