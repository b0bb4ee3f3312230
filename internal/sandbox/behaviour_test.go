package sandbox_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/apispec"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
)

const key = "k"

type api struct {
	t   *testing.T
	url string
	sb  *sandbox.Server
}

func start(t *testing.T, cfg sandbox.Config) *api {
	t.Helper()
	cfg.APIKey = key
	if cfg.Latency == (sandbox.Latency{}) {
		cfg.Latency, _ = sandbox.ParseLatency("fixed:1s")
	}
	sb, srv := sandboxtest.Serve(t, cfg)
	sb.Start()
	return &api{t: t, url: srv.URL, sb: sb}
}

func (a *api) do(method, path, body string) (*http.Response, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

const rentvine = `{"integration_id":"int_rentvine_demo","first_name":"Ada","last_name":"Lovelace","email_1":"ada@example.com"}`

func (a *api) create() string {
	a.t.Helper()
	resp, body := a.do("POST", "/v1/residents/", rentvine)
	if resp == nil || resp.StatusCode != 200 {
		a.t.Fatalf("create: %v %s", resp, body)
	}
	var answer struct {
		JobID string `json:"job_id"`
	}
	json.Unmarshal(body, &answer)
	return answer.JobID
}

func (a *api) status(job string) map[string]any {
	a.t.Helper()
	_, body := a.do("GET", "/v1/admin/write-status/"+job, "")
	var out map[string]any
	json.Unmarshal(body, &out)
	return out
}

func TestRateLimitWindow(t *testing.T) {
	clk := sandbox.NewManualClock(time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC))
	a := start(t, sandbox.Config{RateLimit: 10, SlowDelay: 20 * time.Millisecond, Now: clk.Now})
	for i := 1; i <= 10; i++ {
		resp, _ := a.do("GET", "/v1/residents/", "")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		if got := resp.Header.Get("x-ratelimit-limit"); got != "10" {
			t.Errorf("x-ratelimit-limit = %q", got)
		}
		if got := resp.Header.Get("x-ratelimit-remaining"); got != strconv.Itoa(10-i) {
			t.Errorf("request %d: x-ratelimit-remaining = %q, want %d", i, got, 10-i)
		}
	}
	if got := a.sb.Stats().Slowed; got != 2 {
		t.Errorf("%d answers held back, want 2 (requests 9 and 10, past 80%%)", got)
	}
	resp, body := a.do("POST", "/v1/residents/", rentvine)
	if resp.StatusCode != 429 || !strings.Contains(string(body), `"code":"rate_limited"`) || resp.Header.Get("x-ratelimit-remaining") != "0" {
		t.Fatalf("request 11: %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Retry-After"); got != "50" {
		t.Errorf("Retry-After = %q, want the 50s left in the window", got)
	}
	if a.sb.Stats().Creates != 0 {
		t.Error("a create answered 429 was made")
	}
	clk.Add(49 * time.Second)
	if resp, _ := a.do("GET", "/v1/residents/", ""); resp.StatusCode != 429 {
		t.Errorf("still in the window: %d, want 429", resp.StatusCode)
	}
	clk.Add(time.Second)
	if resp, _ := a.do("GET", "/v1/residents/", ""); resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-remaining") != "9" {
		t.Errorf("next window: %d remaining %s", resp.StatusCode, resp.Header.Get("x-ratelimit-remaining"))
	}
	if got := a.sb.Stats().RateLimited; got != 2 {
		t.Errorf("stats count %d 429s, want 2", got)
	}
}

// Windows that start at an offset from the clock's minute (here :23) are
// counted, and their Retry-After told, from there.
func TestRateLimitWindowOffset(t *testing.T) {
	clk := sandbox.NewManualClock(time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC))
	a := start(t, sandbox.Config{RateLimit: 2, RateWindowOffset: 23 * time.Second, SlowDelay: time.Millisecond, Now: clk.Now})
	for i := 1; i <= 2; i++ {
		a.do("GET", "/v1/residents/", "")
	}
	resp, _ := a.do("GET", "/v1/residents/", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "13" {
		t.Fatalf("at :10, the third of 2: %d, Retry-After %q, want 429 and the 13 s to :23", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clk.Add(12 * time.Second) // :22, the minute's boundary long passed
	if resp, _ := a.do("GET", "/v1/residents/", ""); resp.StatusCode != 429 {
		t.Errorf("at :22, still the window that started at :23 a minute ago: %d, want 429", resp.StatusCode)
	}
	clk.Add(time.Second) // :23
	if resp, _ := a.do("GET", "/v1/residents/", ""); resp.StatusCode != 200 || resp.Header.Get("x-ratelimit-remaining") != "1" {
		t.Errorf("at :23, a new window: %d, remaining %s", resp.StatusCode, resp.Header.Get("x-ratelimit-remaining"))
	}
}

func TestSlowDelayIsReal(t *testing.T) {
	a := start(t, sandbox.Config{RateLimit: 5, SlowDelay: 300 * time.Millisecond})
	for i := 0; i < 4; i++ {
		a.do("GET", "/v1/residents/", "")
	}
	began := time.Now()
	a.do("GET", "/v1/residents/", "")
	if took := time.Since(began); took < 300*time.Millisecond {
		t.Errorf("the answer past 80%% took %v, want the 300ms delay", took)
	}
}

func TestFaultsAtRunTime(t *testing.T) {
	a := start(t, sandbox.Config{RateLimit: -1})
	resp, _ := a.do("PUT", "/_sandbox/faults", `{"error_rate":1,"error_burst":3}`)
	if resp.StatusCode != 200 {
		t.Fatalf("PUT faults: %d", resp.StatusCode)
	}
	resp, _ = a.do("GET", "/v1/residents/", "")
	a.do("PUT", "/_sandbox/faults", `{}`)
	if resp.StatusCode != 503 {
		t.Errorf("with error_rate 1: %d", resp.StatusCode)
	}
	// Switching faults off ends a burst at once.
	codes := []int{}
	for i := 0; i < 3; i++ {
		resp, _ := a.do("GET", "/v1/residents/", "")
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 200 {
		t.Errorf("after switching faults off: %v", codes)
	}

	a.do("PUT", "/_sandbox/faults", `{"drop_rate":1}`)
	resp, _ = a.do("POST", "/v1/residents/", rentvine)
	a.do("PUT", "/_sandbox/faults", `{}`)
	if resp != nil {
		t.Errorf("a dropped answer arrived: %d", resp.StatusCode)
	}
	if a.sb.Stats().Creates != 1 {
		t.Error("a dropped answer's create did not take effect")
	}

	a.do("PUT", "/_sandbox/faults", `{"slow_rate":1,"slow_delay":"200ms"}`)
	began := time.Now()
	a.do("GET", "/v1/residents/", "")
	if took := time.Since(began); took < 200*time.Millisecond {
		t.Errorf("slow answer took %v", took)
	}
	if resp, _ := a.do("PUT", "/_sandbox/faults", `{"error_rate":0.9,"drop_rate":0.9}`); resp.StatusCode != 400 {
		t.Errorf("rates adding up past 1 were accepted")
	}
	if f := a.sb.Stats().Faults; f["error"] != 1 || f["drop"] != 1 || f["slow"] != 1 {
		t.Errorf("fault counts = %v", f)
	}
}

func TestFaultsRepeatWithTheSeed(t *testing.T) {
	run := func() string {
		a := start(t, sandbox.Config{RateLimit: -1, Seed: 7, Faults: sandbox.Faults{ErrorRate: 0.3}})
		var b strings.Builder
		for i := 0; i < 40; i++ {
			resp, _ := a.do("GET", "/v1/residents/", "")
			b.WriteString(strconv.Itoa(resp.StatusCode / 100))
		}
		return b.String()
	}
	first, second := run(), run()
	if first != second || !strings.Contains(first, "5") || !strings.Contains(first, "2") {
		t.Errorf("two runs with one seed: %s / %s", first, second)
	}
}

func TestStuckJobsAndRetryWrite(t *testing.T) {
	clk := sandbox.NewManualClock(time.Now())
	a := start(t, sandbox.Config{RateLimit: -1, StuckRate: 1, Now: clk.Now})
	stuck := a.create()
	clk.Add(24 * time.Hour)
	if st := a.status(stuck)["write_status"]; st != "PENDING" {
		t.Errorf("a stuck job is %v after a day", st)
	}
	if resp, _ := a.do("POST", "/v1/admin/retry-write/"+stuck, "{}"); resp.StatusCode != 400 {
		t.Errorf("retry-write of a PENDING job: %d, want 400", resp.StatusCode)
	}

	b := start(t, sandbox.Config{RateLimit: -1, FailureRate: 1, Now: clk.Now})
	failed := b.create()
	clk.Add(time.Minute)
	st := b.status(failed)
	errs, _ := st["errors"].([]any)
	if st["write_status"] != "FAILURE" || len(errs) != 1 || !strings.HasPrefix(errs[0].(string), `{"Message":`) {
		t.Fatalf("failed job = %v; errors must be stringified JSON", st)
	}
	resp, body := b.do("POST", "/v1/admin/retry-write/"+failed, "{}")
	var answer struct {
		Success bool   `json:"success"`
		JobID   string `json:"job_id"`
	}
	json.Unmarshal(body, &answer)
	if resp.StatusCode != 200 || !answer.Success || answer.JobID == "" || answer.JobID == failed {
		t.Errorf("retry-write: %d %s", resp.StatusCode, body)
	}
}

// hookReceiver records the webhook deliveries it gets and answers with the
// status the test sets.
type hookReceiver struct {
	mu     sync.Mutex
	bodies [][]byte
	sigs   []string
	status int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bodies = append(h.bodies, b)
	h.sigs = append(h.sigs, r.Header.Get("propexo-signature"))
	w.WriteHeader(h.status)
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
	}
}

func TestWebhooks(t *testing.T) {
	recv := &hookReceiver{status: 200}
	hooks := httptest.NewServer(recv)
	defer hooks.Close()
	lat, _ := sandbox.ParseLatency("fixed:50ms")
	a := start(t, sandbox.Config{RateLimit: -1, Latency: lat, PartialRate: 0.5, Seed: 3,
		Webhooks: sandbox.WebhookConfig{URL: hooks.URL, Secret: "whsec"}})
	jobs := map[string]bool{}
	for i := 0; i < 6; i++ {
		jobs[a.create()] = true
	}
	// Partial writes send WRITE_OPERATION_FAILURE and, having created the
	// resident, DATA_NEW: every job gets DATA_NEW.
	waitFor(t, "the webhooks", func() bool {
		for job := range jobs {
			if a.status(job)["write_status"] == "PENDING" {
				return false
			}
		}
		return a.sb.Stats().WebhooksOutstanding == 0 // every job's events delivered
	})
	recv.mu.Lock()
	defer recv.mu.Unlock()
	seenNew, seenFailure := 0, 0
	for i, body := range recv.bodies {
		if recv.sigs[i] != sandbox.Signature("whsec", body) {
			t.Errorf("delivery %d: bad signature", i)
		}
		var ev struct {
			Event     string `json:"event"`
			Trigger   string `json:"trigger"`
			RootJobID string `json:"root_job_id"`
			RecordID  string `json:"record_id"`
			Data      struct {
				RootJobID   string   `json:"root_job_id"`
				WriteStatus string   `json:"write_status"`
				Errors      []string `json:"errors"`
			} `json:"data"`
		}
		json.Unmarshal(body, &ev)
		switch {
		case ev.Event == "DATA_NEW":
			seenNew++
			if !jobs[ev.RootJobID] || !strings.HasPrefix(ev.RecordID, "res_") {
				t.Errorf("DATA_NEW = %s", body)
			}
		case ev.Trigger == "WRITE_OPERATION_FAILURE":
			seenFailure++
			if !jobs[ev.Data.RootJobID] || ev.Data.WriteStatus != "PARTIAL_SUCCESS" || len(ev.Data.Errors) == 0 {
				t.Errorf("WRITE_OPERATION_FAILURE = %s", body)
			}
		default:
			t.Errorf("unknown delivery %s", body)
		}
	}
	if seenNew != 6 || seenFailure == 0 {
		t.Errorf("%d DATA_NEW and %d WRITE_OPERATION_FAILURE", seenNew, seenFailure)
	}
}

func TestWebhooksRetryAndDuplicate(t *testing.T) {
	recv := &hookReceiver{status: 500}
	hooks := httptest.NewServer(recv)
	defer hooks.Close()
	lat, _ := sandbox.ParseLatency("fixed:10ms")
	a := start(t, sandbox.Config{RateLimit: -1, Latency: lat,
		Webhooks: sandbox.WebhookConfig{URL: hooks.URL, Secret: "s", RetryInterval: 100 * time.Millisecond, MaxRetries: 2}})
	a.create()
	waitFor(t, "the first attempt", func() bool { return recv.count() >= 1 })
	// Read before the count: 0 outstanding comes only after the last try.
	outstanding := a.sb.Stats().WebhooksOutstanding
	if n := recv.count(); n < 3 && outstanding != 1 {
		t.Errorf("after %d of 3 attempts, %d deliveries outstanding, want its retry", n, outstanding)
	}
	waitFor(t, "three attempts", func() bool { return recv.count() == 3 })
	waitFor(t, "the delivery given up", func() bool { return a.sb.Stats().WebhooksOutstanding == 0 })
	if got := recv.count(); got != 3 {
		t.Errorf("%d attempts, want 1 and 2 retries", got)
	}
	if got := a.sb.Stats().Webhooks["failed"]; got != 3 {
		t.Errorf("stats failed = %d", got)
	}

	recv2 := &hookReceiver{status: 204}
	hooks2 := httptest.NewServer(recv2)
	defer hooks2.Close()
	b := start(t, sandbox.Config{RateLimit: -1, Latency: lat,
		Webhooks: sandbox.WebhookConfig{URL: hooks2.URL, Secret: "s", DuplicateRate: 1}})
	b.create()
	waitFor(t, "two copies", func() bool { return recv2.count() == 2 })
	if !bytes.Equal(recv2.bodies[0], recv2.bodies[1]) {
		t.Error("the duplicate differs from the original")
	}
}

// A gateway error comes after the request took effect: the create made its
// job, the answer is a 5xx. A status read of a known job may answer 404
// (the API's own view stays true for the tests).
func TestGatewayErrorsAndStatusNotFound(t *testing.T) {
	a := start(t, sandbox.Config{RateLimit: -1, Seed: 5})
	a.do("PUT", "/_sandbox/faults", `{"gateway_error_rate":1}`)
	codes := map[int]bool{}
	for i := 0; i < 12; i++ {
		resp, _ := a.do("POST", "/v1/residents/", rentvine)
		if resp == nil || resp.StatusCode < 500 {
			t.Fatalf("with gateway_error_rate 1: %v", resp)
		}
		codes[resp.StatusCode] = true
	}
	a.do("PUT", "/_sandbox/faults", `{}`)
	if got := a.sb.Stats().Creates; got != 12 {
		t.Errorf("%d of 12 creates answered 5xx took effect, want all", got)
	}
	if !codes[502] || !codes[504] || !codes[500] {
		t.Errorf("gateway answers %v, want 500, 502 and 504", codes)
	}
	job := a.create()
	a.do("PUT", "/_sandbox/faults", `{"status_not_found_rate":1}`)
	if resp, _ := a.do("GET", "/v1/admin/write-status/"+job, ""); resp.StatusCode != 404 {
		t.Errorf("status read with status_not_found_rate 1: %d, want 404", resp.StatusCode)
	}
	if resp, _ := a.do("GET", "/_sandbox/write-status/"+job, ""); resp.StatusCode != 200 {
		t.Errorf("the sandbox's own view: %d, want 200", resp.StatusCode)
	}
	if resp, _ := a.do("PUT", "/_sandbox/faults", `{"gateway_error_rate":0.6,"drop_rate":0.6}`); resp.StatusCode != 400 {
		t.Error("rates adding up past 1 were accepted")
	}
}

// The shapes the reference documents: vendors as the upper-case enum, meta
// with orderBy as an array (a get by id's too), a flat DATA_NEW with
// context, job_type and meta, sent when the cache reads the record, and
// Propertyware SOAP's slug answering 405.
func TestDocumentedShapes(t *testing.T) {
	recv := &hookReceiver{status: 200}
	hooks := httptest.NewServer(recv)
	defer hooks.Close()
	lat, _ := sandbox.ParseLatency("fixed:50ms")
	lag, _ := importer.ParseCacheLag("rentvine=sync")
	a := start(t, sandbox.Config{RateLimit: -1, Latency: lat, CacheLag: lag, Webhooks: sandbox.WebhookConfig{URL: hooks.URL, Secret: "whsec"}})
	job := a.create()
	waitFor(t, "the write", func() bool { return a.status(job)["write_status"] == "SUCCESS" })
	id, _ := a.status(job)["created_record_id"].(string)

	// Until the integration syncs, the record is not shown, and no DATA_NEW.
	if resp, _ := a.do("GET", "/v1/residents/"+id, ""); resp.StatusCode != 404 {
		t.Errorf("get before the sync: %d, want 404", resp.StatusCode)
	}
	if n, queued := recv.count(), a.sb.Stats().WebhooksOutstanding; n+queued != 0 {
		t.Errorf("%d deliveries made and %d queued before the sync read the record", n, queued)
	}
	if resp, body := a.do("POST", "/v1/admin/integrations/int_rentvine_demo/manual-sync", ""); resp.StatusCode != 200 {
		t.Fatalf("manual sync: %d %s", resp.StatusCode, body)
	}
	resp, body := a.do("GET", "/v1/residents/"+id, "")
	var one struct {
		Meta    map[string]any `json:"meta"`
		Results struct {
			IntegrationVendor string `json:"integration_vendor"`
		} `json:"results"`
	}
	json.Unmarshal(body, &one)
	if _, isArray := one.Meta["orderBy"].([]any); resp.StatusCode != 200 || !isArray || one.Meta["limit"] == nil || one.Meta["hasMore"] == nil || one.Results.IntegrationVendor != "RENTVINE" {
		t.Errorf("get after the sync: %d %s", resp.StatusCode, body)
	}
	_, body = a.do("GET", "/v1/admin/integrations/", "")
	if !strings.Contains(string(body), `"vendor":"RENTMANAGER"`) || !strings.Contains(string(body), `"orderBy":[]`) {
		t.Errorf("integrations: %s", body)
	}
	waitFor(t, "DATA_NEW", func() bool { return recv.count() == 1 })
	recv.mu.Lock()
	var ev map[string]any
	json.Unmarshal(recv.bodies[0], &ev)
	recv.mu.Unlock()
	for _, k := range []string{"context", "event", "integration_id", "object", "record_id", "root_job_id", "job_id", "job_type", "vendor", "meta", "payload"} {
		if _, ok := ev[k]; !ok {
			t.Errorf("DATA_NEW lacks %q: %v", k, ev)
		}
	}
	if ev["root_job_id"] != job || ev["vendor"] != "RENTVINE" || ev["record_id"] != id {
		t.Errorf("DATA_NEW = %v", ev)
	}
	if resp, _ := a.do("POST", "/v1/residents/propertyware/", `{"integration_id":"int_rentvine_demo"}`); resp.StatusCode != 405 {
		t.Errorf("Propertyware SOAP's create: %d, want 405", resp.StatusCode)
	}
	if st := a.sb.Stats(); st.ManualSyncs != 1 {
		t.Errorf("%d manual syncs counted", st.ManualSyncs)
	}
}

// A vendor's path takes only that vendor's fields: Buildium's has no notes
// or property (400 unless ignore_unknown_fields=true), and requires a lease
// and a US address; the generic path takes every field.
func TestVendorPathsTakeTheirOwnFields(t *testing.T) {
	var off []apispec.Violation
	a := start(t, sandbox.Config{RateLimit: -1, OnViolation: func(v apispec.Violation) { off = append(off, v) }})
	ok := `"integration_id":"int_buildium_demo","lease_id":"lease_1","first_name":"Ada","last_name":"Lovelace","address_1":"1 Main St","city":"Austin","state":"TX","zip":"78701","country":"US"`
	for _, tt := range []struct {
		path, body string
		status     int
		issue      string
	}{
		{"/v1/residents/buildium/", "{" + ok + "}", 200, ""},
		{"/v1/residents/buildium/", "{" + ok + `,"notes":"VIP","property_id":"prop_900"}`, 400, "Unrecognized key: notes"},
		{"/v1/residents/buildium/?ignore_unknown_fields=true", "{" + ok + `,"notes":"VIP"}`, 200, ""},
		{"/v1/residents/buildium/", `{"integration_id":"int_buildium_demo","first_name":"Ada","last_name":"Lovelace","country":"CA"}`, 400, "lease_id"},
		{"/v1/residents/", "{" + ok + `,"notes":"VIP"}`, 200, ""},
		{"/v1/residents/rentmanager/", `{"integration_id":"int_rentmanager_demo","property_id":"prop_100","rent_period":"MONTHLY","rent_due_day":1,"first_name":"A","last_name":"B","lease_id":"l"}`, 400, "Unrecognized key: lease_id"},
		{"/v1/residents/", "{" + ok + `,"nickname":"Ada"}`, 400, "Unrecognized key: nickname"},
	} {
		resp, body := a.do("POST", tt.path, tt.body)
		if resp.StatusCode != tt.status || !strings.Contains(string(body), tt.issue) {
			t.Errorf("POST %s %s: %d %s; want %d with %q", tt.path, tt.body, resp.StatusCode, body, tt.status, tt.issue)
		}
	}
	// ignore_unknown_fields is the docs pages', not the file's; and the
	// nickname no schema has.
	if len(off) != 2 || off[0].Field != "ignore_unknown_fields" || off[1].Field != "nickname" {
		t.Errorf("violations of the file: %v", off)
	}
}

// What the published file (and the docs pages beside it) say the API does,
// the sandbox does: reads give the read model (no rent terms or lease;
// last_seen), an x_id filter needs integration_id and x_property_id, an
// email filter compares exactly, the PUT refuses a key outside its schema
// and a null, an empty string clears, a manual sync refreshes last_seen
// except for a resident gone from the PMS, and an update read back sends
// DATA_UPDATE.
func TestTheFilesBehaviours(t *testing.T) {
	recv := &hookReceiver{status: 200}
	hooks := httptest.NewServer(recv)
	defer hooks.Close()
	clk := sandbox.NewManualClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	var refused []apispec.Violation
	a := start(t, sandbox.Config{RateLimit: -1, Now: clk.Now, OnViolation: func(v apispec.Violation) { refused = append(refused, v) },
		Webhooks: sandbox.WebhookConfig{URL: hooks.URL, Secret: "whsec"}})
	resp, body := a.do("POST", "/_sandbox/residents", `[
		{"integration_id":"int_rentmanager_demo","property_id":"prop_100","x_id":"7","first_name":"Ada","last_name":"Lovelace","email_1":"Ada@Example.com","rent_period":"MONTHLY","rent_due_day":5,"middle_name":"King","last_seen":"2026-10-01T00:00:00Z"},
		{"integration_id":"int_rentmanager_demo","property_id":"prop_200","x_id":"7","first_name":"Bo","last_name":"Diddley","last_seen":"2026-10-01T00:00:00Z"}]`)
	var seeded struct {
		IDs []string `json:"ids"`
	}
	if json.Unmarshal(body, &seeded); resp.StatusCode != 200 || len(seeded.IDs) != 2 {
		t.Fatalf("seed: %d %s", resp.StatusCode, body)
	}
	ada, bo := seeded.IDs[0], seeded.IDs[1]

	_, body = a.do("GET", "/v1/residents/"+ada, "")
	for _, absent := range []string{"rent_period", "rent_due_day", "lease_id", "attachments"} {
		if strings.Contains(string(body), `"`+absent+`"`) {
			t.Errorf("the read model shows %s: %s", absent, body)
		}
	}
	for _, present := range []string{`"last_seen":"2026-10-01T00:00:00Z"`, `"x_lease_id":null`, `"pets":[]`} {
		if !strings.Contains(string(body), present) {
			t.Errorf("the read model lacks %s: %s", present, body)
		}
	}
	if resp, _ := a.do("GET", "/v1/residents/?integration_id=int_rentmanager_demo&x_id=7", ""); resp.StatusCode != 400 {
		t.Errorf("x_id without x_property_id: %d, want 400", resp.StatusCode)
	}
	_, body = a.do("GET", "/v1/residents/?integration_id=int_rentmanager_demo&x_id=7&x_property_id=200", "")
	if !strings.Contains(string(body), bo) || strings.Contains(string(body), ada) {
		t.Errorf("x_id 7 in property 200: %s", body)
	}
	for email, found := range map[string]bool{"Ada@Example.com": true, "ada@example.com": false} {
		_, body = a.do("GET", "/v1/residents/?integration_id=int_rentmanager_demo&email_1="+email, "")
		if strings.Contains(string(body), ada) != found {
			t.Errorf("email_1=%s found her: %v, want %v (exact)", email, !found, found)
		}
	}

	for _, bad := range []string{`{"integration_id":"int_rentmanager_demo","first_name":"A"}`, `{"phone_1":"5551234567","phone_1_type":"OTHER"}`, `{"middle_name":null}`} {
		if resp, body := a.do("PUT", "/v1/residents/"+ada, bad); resp.StatusCode != 400 {
			t.Errorf("PUT %s: %d %s, want 400", bad, resp.StatusCode, body)
		}
	}
	if len(refused) != 3 {
		t.Errorf("the three refused PUTs made %d violations: %v", len(refused), refused)
	}
	resp, body = a.do("PUT", "/v1/residents/"+ada, `{"middle_name":"","phone_1":"5551234567","phone_1_type":"MOBILE"}`)
	var answer struct {
		JobID string `json:"job_id"`
	}
	if json.Unmarshal(body, &answer); resp.StatusCode != 200 || answer.JobID == "" {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	clk.Add(2 * time.Second)
	if st := a.status(answer.JobID); st["write_status"] != "SUCCESS" || st["created_record_id"] != ada {
		t.Fatalf("the update: %v", st)
	}
	_, body = a.do("GET", "/v1/residents/"+ada, "")
	if !strings.Contains(string(body), `"middle_name":null`) || !strings.Contains(string(body), `"phone_1":"5551234567"`) {
		t.Errorf("after the update: %s", body)
	}
	waitFor(t, "DATA_UPDATE", func() bool { return recv.count() == 1 })
	recv.mu.Lock()
	var ev map[string]any
	json.Unmarshal(recv.bodies[0], &ev)
	recv.mu.Unlock()
	if ev["event"] != "DATA_UPDATE" || ev["record_id"] != ada || ev["root_job_id"] != answer.JobID {
		t.Errorf("DATA_UPDATE = %v", ev)
	}

	if resp, _ := a.do("DELETE", "/_sandbox/residents/"+bo, ""); resp.StatusCode != 200 {
		t.Fatalf("gone: %d", resp.StatusCode)
	}
	clk.Add(time.Hour)
	a.do("POST", "/v1/admin/integrations/int_rentmanager_demo/manual-sync", "")
	_, body = a.do("GET", "/v1/residents/"+bo, "")
	if !strings.Contains(string(body), `"last_seen":"2026-10-01T00:00:00Z"`) {
		t.Errorf("a resident gone from the PMS is seen by a sync: %s", body)
	}
	_, body = a.do("GET", "/v1/residents/"+ada, "")
	if !strings.Contains(string(body), `"last_seen":"2026-12-01T13:00:02Z"`) {
		t.Errorf("a sync did not see her: %s", body)
	}
	_, body = a.do("GET", "/_sandbox/residents/"+ada, "")
	if !strings.Contains(string(body), `"rent_due_day":5`) {
		t.Errorf("the PMS lost her rent terms: %s", body)
	}
}

// Subscriptions answer as the file has them: triggers as objects, active
// or not listed apart, updated in place.
func TestSubscriptionShapes(t *testing.T) {
	a := start(t, sandbox.Config{RateLimit: -1})
	resp, body := a.do("POST", "/v1/webhooks/", `{"url":"https://h.example.com/x","triggers":["DATA_NEW"],"model":"residents","secret":"0123456789","active":true}`)
	var created struct {
		Result struct {
			ID       string `json:"id"`
			Triggers []struct {
				ID, Trigger string
			} `json:"triggers"`
		} `json:"result"`
	}
	if json.Unmarshal(body, &created); resp.StatusCode != 200 || len(created.Result.Triggers) != 1 || created.Result.Triggers[0].Trigger != "DATA_NEW" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	id := created.Result.ID
	if resp, body := a.do("PUT", "/v1/webhooks/"+id, `{"triggers":["DATA_NEW","DATA_UPDATE"],"active":false}`); resp.StatusCode != 200 || !strings.Contains(string(body), `"trigger":"DATA_UPDATE"`) {
		t.Errorf("update: %d %s", resp.StatusCode, body)
	}
	if _, body := a.do("GET", "/v1/webhooks/", ""); strings.Contains(string(body), id) {
		t.Errorf("an inactive subscription listed by default: %s", body)
	}
	if _, body := a.do("GET", "/v1/webhooks/?active=false", ""); !strings.Contains(string(body), id) {
		t.Errorf("active=false: %s", body)
	}
	if resp, body := a.do("DELETE", "/v1/webhooks/"+id, ""); resp.StatusCode != 200 || !strings.Contains(string(body), `"result":{"id":"`+id) {
		t.Errorf("delete: %d %s", resp.StatusCode, body)
	}
}
