package apispec_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/apispec"
)

func spec(t *testing.T) *apispec.Spec {
	t.Helper()
	s, err := apispec.Published()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// want is what a check must find: nothing, or a violation of a kind at a
// field.
type want struct {
	kind  apispec.Kind
	field string
}

func check(t *testing.T, got []apispec.Violation, w *want) {
	t.Helper()
	if w == nil {
		if len(got) > 0 {
			t.Fatalf("violations: %v", got)
		}
		return
	}
	for _, v := range got {
		if v.Kind == w.kind && v.Field == w.field {
			if v.Error() == "" {
				t.Fatal("a violation that says nothing")
			}
			return
		}
	}
	t.Fatalf("want a %s violation at %q, got %v", w.kind, w.field, got)
}

func TestRequests(t *testing.T) {
	s := spec(t)
	tests := []struct {
		name, method, target, body string
		want                       *want
	}{
		{"a generic create", "POST", "/v1/residents/", `{"integration_id":"i","first_name":"A","rent_due_day":5,"phone_1":"5551234567","phone_1_type":"OTHER"}`, nil},
		{"a create without its integration", "POST", "/v1/residents/", `{"first_name":"A"}`, &want{apispec.Invalid, ""}},
		{"a create with a bad email", "POST", "/v1/residents/", `{"integration_id":"i","email_1":"nobody"}`, &want{apispec.Invalid, "email_1"}},
		{"a vendor create is checked as the generic one", "POST", "/v1/residents/rentmanager/", `{"integration_id":"i","nickname":"x"}`, &want{apispec.Undeclared, "nickname"}},
		{"an update in the PUT's terms", "PUT", "/v1/residents/res_1", `{"first_name":"A","phone_1":"5551234567","phone_1_type":"MOBILE","state":"CA","country":"US","date_of_birth":"1990-01-02"}`, nil},
		{"an update names its integration", "PUT", "/v1/residents/res_1", `{"integration_id":"i","first_name":"A"}`, &want{apispec.Undeclared, "integration_id"}},
		{"an update moves its property", "PUT", "/v1/residents/res_1", `{"property_id":"p"}`, &want{apispec.Undeclared, "property_id"}},
		{"an update's phone_1 of type OTHER", "PUT", "/v1/residents/res_1", `{"phone_1":"5551234567","phone_1_type":"OTHER"}`, &want{apispec.Invalid, "phone_1_type"}},
		{"an update clears with null", "PUT", "/v1/residents/res_1", `{"middle_name":null}`, &want{apispec.Invalid, "middle_name"}},
		{"an update's country spelled out", "PUT", "/v1/residents/res_1", `{"country":"United States"}`, &want{apispec.Invalid, "country"}},
		{"Ontario, which the file spells as a YAML boolean", "PUT", "/v1/residents/rentmanager/res_1", `{"state":"ON"}`, nil},
		{"a listing by x_id in its property", "GET", "/v1/residents/?integration_id=i&x_id=5&x_property_id=9&limit=250&offset=0&order-by=created_at:asc", "", nil},
		{"a page too long", "GET", "/v1/residents/?integration_id=i&limit=300", "", &want{apispec.Invalid, "limit"}},
		{"a filter the file lacks", "GET", "/v1/residents/?integration_id=i&first_name=Ada", "", &want{apispec.Undeclared, "first_name"}},
		{"a phone filter of 10 digits", "GET", "/v1/residents/?phone_1=5551234567", "", nil},
		{"a subscription", "POST", "/v1/webhooks/", `{"url":"https://h/x","triggers":["DATA_NEW","DATA_UPDATE"],"model":"residents","secret":"0123456789","headers":[],"active":true}`, nil},
		{"a subscription's short secret", "POST", "/v1/webhooks/", `{"url":"https://h/x","triggers":["DATA_NEW"],"secret":"short"}`, &want{apispec.Invalid, "secret"}},
		{"a retry-write", "POST", "/v1/admin/retry-write/job_1", `{}`, nil},
		{"an operation the file lacks", "DELETE", "/v1/residents/res_1", "", &want{apispec.Invalid, ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://127.0.0.1"+tt.target, nil)
			r.Header.Set("Authorization", "Bearer k")
			if tt.body != "" {
				r.Header.Set("Content-Type", "application/json")
			}
			check(t, s.Request(r, []byte(tt.body)), tt.want)
		})
	}
}

func TestUndocumentedEndpointsAreNotChecked(t *testing.T) {
	s := spec(t)
	for _, target := range []string{"/v1/admin/integrations/?limit=100", "/v1/properties/?integration_id=i", "/_sandbox/stats"} {
		r := httptest.NewRequest("GET", "http://127.0.0.1"+target, nil)
		if got := s.Request(r, nil); len(got) > 0 {
			t.Errorf("%s: %v", target, got)
		}
		if s.Documents("GET", r.URL.Path) {
			t.Errorf("%s is documented", target)
		}
	}
}

func TestAnswers(t *testing.T) {
	s := spec(t)
	resident := `{"id":"res_1","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","last_seen":null,"x_id":"7","x_lease_id":null,
"address_1_alternate":null,"address_1":null,"address_2_alternate":null,"address_2":null,"balance_in_cents":null,"city_alternate":null,"city":null,
"country_alternate":null,"country":null,"custom_data":null,"date_of_birth":null,"email_1":"a@example.com","email_2":null,"first_name":"A",
"is_employee":null,"last_name":"B","late_balance_in_cents":null,"middle_name":null,"notes":null,"phone_1_type":null,"phone_1":null,
"phone_2_type":null,"phone_2":null,"state_alternate":null,"state":null,"zip_alternate":null,"zip":null,"pets":[],"vehicles":[],
"integration_id":"i","integration_vendor":"RENTMANAGER","property_id":"p"%s}`
	meta := `"meta":{"orderBy":[],"offset":0,"limit":250,"hasMore":false,"total":1}`
	tests := []struct {
		name, method, target string
		status               int
		header               string
		body                 string
		want                 *want
	}{
		{"a write's answer as the file has it", "POST", "/v1/residents/", 200, "", `{"job_id":"job_1","data":{"first_name":"A"}}`, nil},
		{"a write's answer as the pages show it", "POST", "/v1/residents/", 200, "", `{"meta":{"job_id":"job_1"},"result":{}}`, &want{apispec.Invalid, ""}},
		{"the read model", "GET", "/v1/residents/?integration_id=i", 200, "", `{` + meta + `,"results":[` + strings.Replace(resident, "%s", "", 1) + `]}`, nil},
		{"a read model with rent terms", "GET", "/v1/residents/?integration_id=i", 200, "", `{` + meta + `,"results":[` + strings.Replace(resident, "%s", `,"rent_due_day":5`, 1) + `]}`, &want{apispec.Undeclared, "results[0].rent_due_day"}},
		{"one resident", "GET", "/v1/residents/res_1", 200, "", `{` + meta + `,"results":` + strings.Replace(resident, "%s", "", 1) + `}`, nil},
		{"a write status", "GET", "/v1/admin/write-status/job_1", 200, "", `{"write_status":"SUCCESS","errors":[],"created_record_id":"res_1"}`, nil},
		{"a write status without its record", "GET", "/v1/admin/write-status/job_1", 200, "", `{"write_status":"PENDING","errors":[]}`, &want{apispec.Invalid, ""}},
		{"subscriptions with trigger strings", "GET", "/v1/webhooks/", 200, "", `{"meta":{"orderBy":[]},"results":[{"id":"w","created_at":"t","updated_at":"t","url":"u","active":true,"secret":"s","system":"SANDBOX","triggers":["DATA_NEW"]}]}`, &want{apispec.Invalid, "results[0].triggers[0]"}},
		{"a 404 with the error body", "GET", "/v1/admin/write-status/job_1", 404, "application/json", `{"error":{"code":"not_found","message":"Job not found"}}`, nil},
		{"a 401 without it", "GET", "/v1/residents/res_1", 401, "application/json", `{"message":"no"}`, &want{apispec.Invalid, ""}},
		{"a gateway's page", "POST", "/v1/residents/", 502, "text/html", `<html>Bad gateway</html>`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://127.0.0.1"+tt.target, nil)
			h := http.Header{}
			if tt.header != "" {
				h.Set("Content-Type", tt.header)
			}
			check(t, s.Answer(r, tt.status, h, []byte(tt.body)), tt.want)
		})
	}
}

func TestBodyFields(t *testing.T) {
	s := spec(t)
	put := s.BodyFields("PUT", "/v1/residents/res_1")
	for _, f := range []string{"first_name", "phone_1_type", "rent_due_day"} {
		if !contains(put, f) {
			t.Errorf("the PUT lacks %s: %v", f, put)
		}
	}
	for _, f := range []string{"integration_id", "property_id", "lease_id"} {
		if contains(put, f) {
			t.Errorf("the PUT has %s", f)
		}
	}
	if post := s.BodyFields("POST", "/v1/residents/buildium/"); !contains(post, "lease_id") || !contains(post, "integration_id") {
		t.Errorf("the POST: %v", post)
	}
}

func TestTransportReportsTheClientsRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"job_id":"job_1","data":{}}`))
	}))
	defer srv.Close()
	var got []apispec.Violation
	client := &http.Client{Transport: &apispec.Transport{Answers: true, Report: func(v apispec.Violation) { got = append(got, v) }}}
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/residents/res_1", strings.NewReader(`{"integration_id":"i"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer k")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	check(t, got, &want{apispec.Undeclared, "integration_id"})
	if len(got) != 1 {
		t.Errorf("want only the request's violation: %v", got)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The two slips the file is read with mended are still there to mend: a
// new copy of the file without them needs no mending (and this test then
// says so).
func TestTheFilesSlipsAreMended(t *testing.T) {
	mended, n := apispec.Readable(apispec.File())
	if n != 5 {
		t.Errorf("mended %d places; the copy of the file has Ontario as true once and 4 nullable enums without null", n)
	}
	if strings.Contains(string(mended), "- true\n") {
		t.Error("Ontario is still true")
	}
}
