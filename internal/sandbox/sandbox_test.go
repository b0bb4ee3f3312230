package sandbox_test

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/internal/sandbox"
)

func TestParseLatency(t *testing.T) {
	for _, good := range []string{"fixed:2s", "uniform:1s-5s", "lognormal:median=2s,p99=30s"} {
		if _, err := sandbox.ParseLatency(good); err != nil {
			t.Errorf("ParseLatency(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"2s", "fixed:soon", "uniform:5s-1s", "lognormal:median=2s", "lognormal:median=2s,p99=1s", "gamma:1s"} {
		if _, err := sandbox.ParseLatency(bad); err == nil {
			t.Errorf("ParseLatency(%q) accepted a bad distribution", bad)
		}
	}
}

// The log-normal latency has the median and p99 it was asked for: measured
// through the API, as the time a write stays PENDING.
func TestLognormalLatencyThroughTheAPI(t *testing.T) {
	lat, _ := sandbox.ParseLatency("lognormal:median=2s,p99=30s")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sb := sandbox.New(sandbox.Config{APIKey: "k", Latency: lat, Seed: 42, Now: clock, RateLimit: -1})
	h := sb.Handler()
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	const n = 2000
	jobs := make([]string, n)
	for i := range jobs {
		rec := do("POST", "/v1/residents/", `{"integration_id":"int_rentvine_demo"}`)
		var answer struct {
			JobID string `json:"job_id"`
		}
		json.NewDecoder(rec.Body).Decode(&answer)
		jobs[i] = answer.JobID
	}
	// Step the clock and note when each job leaves PENDING.
	resolved := make([]float64, 0, n)
	pending := map[string]bool{}
	for _, j := range jobs {
		pending[j] = true
	}
	start := now
	for step := 0; step < 400 && len(pending) > 0; step++ {
		now = now.Add(250 * time.Millisecond)
		for j := range pending {
			var st struct {
				WriteStatus string `json:"write_status"`
			}
			json.NewDecoder(do("GET", "/v1/admin/write-status/"+j, "").Body).Decode(&st)
			if st.WriteStatus != "PENDING" {
				resolved = append(resolved, now.Sub(start).Seconds())
				delete(pending, j)
			}
		}
	}
	sort.Float64s(resolved)
	median, p99 := resolved[len(resolved)/2], resolved[len(resolved)*99/100]
	if math.Abs(median-2) > 0.35 || p99 < 20 || p99 > 45 {
		t.Errorf("median %.2fs, p99 %.2fs; want about 2s and 30s", median, p99)
	}
}

func TestUnknownFieldsAndHealth(t *testing.T) {
	sb := sandbox.New(sandbox.Config{APIKey: "k"})
	srv := httptest.NewServer(sb.Handler())
	defer srv.Close()
	post := func(query string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/residents/"+query, bytes.NewBufferString(`{"integration_id":"int_rentvine_demo","favorite_color":"blue"}`))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(""); resp.StatusCode != 400 {
		t.Errorf("unknown field: %d, want 400", resp.StatusCode)
	}
	if resp := post("?ignore_unknown_fields=true"); resp.StatusCode != 200 {
		t.Errorf("unknown field with ignore_unknown_fields=true: %d, want 200", resp.StatusCode)
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz: %v %v", resp, err)
	}
	resp, _ = http.Get(srv.URL + "/v1/residents/")
	if resp.StatusCode != 401 {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}
}
