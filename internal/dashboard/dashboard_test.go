package dashboard_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/dashboard"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/report"
	"github.com/propexo-importer/importer/internal/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// running sets up an import of n rows in Redis, none resolved yet, and a
// dashboard over it.
func running(t *testing.T, n int, cfg dashboard.Config) (*store.Store, *httptest.Server) {
	t.Helper()
	rdb := redistest.Client(t)
	st := store.New(rdb)
	ctx := context.Background()
	if _, _, err := st.CreateImport(ctx, importer.Import{ID: "imp-dash", File: "residents.csv", CreatedAt: time.Now().UTC(), Total: -1,
		Options: importer.Options{Vendor: importer.VendorGeneric, Deadline: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	var rows []importer.Row
	for i := 1; i <= n; i++ {
		rows = append(rows, importer.Row{Number: i, Columns: []importer.Column{{Name: "First Name", Value: "Resident"}, {Name: "E-mail", Value: "r@example.com"}}})
	}
	header, err := st.InputHeader(ctx, "imp-dash", []string{"First Name", "E-mail"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SaveInput(ctx, "imp-dash", header, rows, nil); err != nil {
		t.Fatal(err)
	}
	st.SetTotal(ctx, "imp-dash", n, importer.FileColumns{Names: []string{"First Name", "E-mail"}})
	cfg.Store, cfg.Reports = st, report.Files{}
	cfg.Redis = asynq.RedisClientOpt{Addr: rdb.Options().Addr, DB: rdb.Options().DB}
	h, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return st, srv
}

func resolve(t *testing.T, st *store.Store, from, to int, o importer.Outcome) {
	t.Helper()
	for r := from; r <= to; r++ {
		res := importer.RowResult{Row: r, Outcome: o, JobID: "job_x", RecordID: "res_x"}
		if o != importer.Succeeded {
			// A create the API refused: safe to send again, so in
			// failed.csv.
			res.ErrorCode, res.Error, res.JobID, res.RecordID = "invalid_request", "Unit is occupied (409)", "", ""
		}
		if _, err := st.Move(context.Background(), "imp-dash", importer.Move{Row: r, To: importer.PhaseResolved, Result: res}); err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		user, pass, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPagesAndDownloads(t *testing.T) {
	st, srv := running(t, 10, dashboard.Config{})
	resolve(t, st, 1, 3, importer.Succeeded)
	resolve(t, st, 4, 4, importer.Failed)
	code, body := get(t, srv.URL+"/imports", "")
	if code != 200 || !strings.Contains(body, "imp-dash") || !strings.Contains(body, `value="40"`) || !strings.Contains(body, "3 succeeded") {
		t.Errorf("/imports: %d\n%s", code, body)
	}
	code, body = get(t, srv.URL+"/imports/imp-dash", "")
	if code != 200 || !strings.Contains(body, "Unit is occupied (409)") || !strings.Contains(body, "invalid_request") {
		t.Errorf("/imports/imp-dash: %d\n%s", code, body)
	}
	// What is not fine is Outcome.Fine's rule: an unchanged row is fine.
	resolve(t, st, 5, 5, importer.Unchanged)
	if code, body = get(t, srv.URL+"/imports/imp-dash/status.json", ""); code != 200 || !strings.Contains(body, `"not_fine":1,`) {
		t.Errorf("status.json: %d %s, want the one failed row not fine", code, body)
	}
	code, body = get(t, srv.URL+"/imports/imp-dash/results.csv", "")
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != 200 || err != nil || len(records) != 11 || records[1][1] != "succeeded" || records[10][1] != "pending" {
		t.Errorf("results.csv: %d %v\n%s", code, err, body)
	}
	if code, body = get(t, srv.URL+"/imports/imp-dash/failed.csv", ""); code != 200 || strings.Count(body, "\n") != 2 {
		t.Errorf("failed.csv: %d\n%s", code, body)
	}
	if code, body = get(t, srv.URL+"/imports/imp-dash/summary.json", ""); code != 200 || !strings.Contains(body, `"import_id": "imp-dash"`) {
		t.Errorf("summary.json: %d\n%s", code, body)
	}
	if code, _ = get(t, srv.URL+"/imports/nope", ""); code != 404 {
		t.Errorf("unknown import: %d", code)
	}
	if code, body = get(t, srv.URL+"/monitoring/api/queues", ""); code != 200 {
		t.Errorf("asynqmon API: %d %s", code, body)
	}
	resp, _ := http.Post(srv.URL+"/imports/imp-dash/cancel", "", nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cancel on a read-only dashboard: %d", resp.StatusCode)
	}
	resp, _ = http.Post(srv.URL+"/monitoring/api/queues/default:pause", "", nil)
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent {
		t.Errorf("asynqmon accepted an action on a read-only dashboard: %d", resp.StatusCode)
	}
}

func TestBasicAuth(t *testing.T) {
	_, srv := running(t, 1, dashboard.Config{Auth: "ops:s3cret"})
	for _, auth := range []string{"", "ops:wrong", "other:s3cret"} {
		if code, _ := get(t, srv.URL+"/imports", auth); code != 401 {
			t.Errorf("auth %q: %d, want 401", auth, code)
		}
	}
	if code, _ := get(t, srv.URL+"/monitoring/", ""); code != 401 {
		t.Errorf("asynqmon without auth: %d", code)
	}
	if code, _ := get(t, srv.URL+"/imports", "ops:s3cret"); code != 200 {
		t.Errorf("right auth: %d", code)
	}
	if _, err := dashboard.New(dashboard.Config{Auth: "nocolon"}); err == nil {
		t.Error("an --auth without a password was accepted")
	}
}

// chromium finds Debian's Chromium; the browser test is skipped, saying
// why, only where it is absent (CI installs it).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed; CI must install it (apt-get install chromium)")
	}
	t.Skip("Chromium is not installed (apt-get install chromium): the browser test cannot run here")
	return ""
}

// In a real headless browser: the Imports page loads, a running import's
// progress rises on its own, and the results.csv link downloads the report.
func TestInABrowser(t *testing.T) {
	bin := chromium(t)
	st, srv := running(t, 20, dashboard.Config{})
	resolve(t, st, 1, 5, importer.Succeeded)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	progress := func() float64 {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector('tr[data-id="imp-dash"] progress').value`))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/imports"), chromedp.WaitVisible(`tr[data-id="imp-dash"] progress`)); err != nil {
		t.Fatal(err)
	}
	before := progress()
	resolve(t, st, 6, 15, importer.Succeeded)
	after := before
	for deadline := time.Now().Add(10 * time.Second); after < 75 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		after = progress()
	}
	if before != 25 || after != 75 {
		t.Errorf("progress went from %v to %v, want 25 then 75 without a reload", before, after)
	}
	if resolved, _ := chromedp.Run(ctx, chromedp.Text(`tr[data-id="imp-dash"] .resolved`)); resolved != "15" {
		t.Errorf("resolved count shows %q, want 15", resolved)
	}

	dir := t.TempDir()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(`tr[data-id="imp-dash"] a.results`, chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(dir, "imp-dash-results.csv")); err == nil && len(b) > 0 {
			got = b
			break
		}
	}
	records, err := csv.NewReader(strings.NewReader(string(got))).ReadAll()
	if err != nil || len(records) != 21 || records[0][0] != "row" || records[15][1] != "succeeded" || records[16][1] != "pending" {
		entries, _ := os.ReadDir(dir)
		t.Errorf("downloaded results.csv: %v (%d records); folder holds %v", err, len(records), entries)
	}

	// The import's own page refreshes itself like the list.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/imports/imp-dash"), chromedp.WaitVisible(`#progress`)); err != nil {
		t.Fatal(err)
	}
	resolve(t, st, 16, 17, importer.TimedOut)
	resolve(t, st, 18, 18, importer.Unchanged)
	var shows string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if shows, _ = chromedp.Run(ctx, chromedp.Text(`#resolved`)); shows == "18" {
			break
		}
	}
	if shows != "18" {
		t.Errorf("the import's page shows %q resolved, want 18 without a reload", shows)
	}
	if counts, _ := chromedp.Run(ctx, chromedp.Text(`#counts`)); !strings.Contains(counts, "15 succeeded") || !strings.Contains(counts, "2 timed out") || !strings.Contains(counts, "1 unchanged") {
		t.Errorf("the import's page counts %q", counts)
	}

	// Readable at 1024 px: nothing wider than the window; screenshots at
	// 1024 and 1440 px for people to look at (not committed).
	shots := filepath.Join(os.TempDir(), "importer-dashboard-screenshots")
	os.MkdirAll(shots, 0o755)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // the page above may reload itself
		t.Fatal(err)
	}
	resolve(t, st, 19, 20, importer.Failed)
	for _, width := range []int64{1024, 1440} {
		for _, page := range []string{"/imports", "/imports/imp-dash"} {
			// (A URL of its own: chromedp waits forever for a page it
			// loaded before to load again.)
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 800)); err != nil {
				t.Fatalf("viewport %d px: %v", width, err)
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("%s%s?width=%d", srv.URL, page, width))); err != nil {
				t.Fatalf("%s at %d px: %v", page, width, err)
			}
			shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
			if err != nil {
				t.Fatal(err)
			}
			wide, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
			if err != nil {
				t.Fatal(err)
			}
			if wide > float64(width) {
				t.Errorf("%s at %d px is %v px wide: it scrolls sideways", page, width, wide)
			}
			name := filepath.Join(shots, fmt.Sprintf("%s-%d.png", strings.ReplaceAll(strings.Trim(page, "/"), "/", "-"), width))
			os.WriteFile(name, shot, 0o644)
			t.Logf("screenshot: %s", name)
		}
	}
}

// Without --auth the dashboard answers only to loopback names and the ones
// configured: a page elsewhere whose host name resolves here (DNS
// rebinding) reads nothing.
func TestHostNamesWithoutAuth(t *testing.T) {
	_, srv := running(t, 1, dashboard.Config{AllowedHosts: []string{"importer.internal"}})
	for host, want := range map[string]int{
		"evil.example":           http.StatusMisdirectedRequest,
		"evil.example:80":        http.StatusMisdirectedRequest,
		"localhost:8088":         200,
		"127.0.0.1":              200,
		"[::1]:8088":             200,
		"importer.internal:8088": 200,
	} {
		req, _ := http.NewRequest("GET", srv.URL+"/imports.json", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
	// With credentials any name is served: a rebinding page has none.
	_, withAuth := running(t, 1, dashboard.Config{Auth: "ops:s3cret"})
	req, _ := http.NewRequest("GET", withAuth.URL+"/imports.json", nil)
	req.Host = "dashboard.example.com"
	req.SetBasicAuth("ops", "s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("with auth under another name: %v %v", resp, err)
	}
}

// The Imports page shows 50 imports at a time, and its poll of an
// unchanged page costs a 304 without a body.
func TestImportsArePagedAndPollsSendOnlyChanges(t *testing.T) {
	st, srv := running(t, 1, dashboard.Config{})
	ctx := context.Background()
	for i := 0; i < 119; i++ {
		if _, _, err := st.CreateImport(ctx, importer.Import{ID: fmt.Sprintf("imp-%03d", i), File: "f.csv", CreatedAt: time.Now().Add(-time.Duration(i+1) * time.Minute).UTC(), Total: -1,
			Options: importer.Options{Vendor: importer.VendorGeneric, Deadline: time.Hour}}); err != nil {
			t.Fatal(err)
		}
	}
	var first []importer.Status
	code, body := get(t, srv.URL+"/imports.json", "")
	if err := json.Unmarshal([]byte(body), &first); code != 200 || err != nil || len(first) != dashboard.PageSize || first[0].ID != "imp-dash" {
		t.Fatalf("page 1: %d, %d imports (%v)", code, len(first), err)
	}
	var last []importer.Status
	_, body = get(t, srv.URL+"/imports.json?page=3", "")
	if json.Unmarshal([]byte(body), &last); len(last) != 20 || last[19].ID != "imp-118" {
		t.Errorf("page 3: %d imports", len(last))
	}
	if _, body = get(t, srv.URL+"/imports?page=2", ""); !strings.Contains(body, "Page 2 of 3") || strings.Count(body, "<tr data-id=") != dashboard.PageSize {
		t.Errorf("page 2 of the HTML:\n%s", body)
	}

	resp, err := http.Get(srv.URL + "/imports.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest("GET", srv.URL+"/imports.json", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if etag == "" || resp.StatusCode != http.StatusNotModified || len(b) != 0 {
		t.Errorf("an unchanged poll: %d with %d bytes (ETag %q), want 304 and none", resp.StatusCode, len(b), etag)
	}
	resolve(t, st, 1, 1, importer.Succeeded)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a changed poll: %d, want 200", resp.StatusCode)
	}
}

// Once an import's rows were deleted after its retention, its report is
// gone: the downloads say so (410), never a report of pending rows.
func TestReportAfterRetentionIsGone(t *testing.T) {
	st, srv := running(t, 3, dashboard.Config{})
	ctx := context.Background()
	resolve(t, st, 1, 3, importer.Succeeded)
	if err := st.Finish(ctx, "imp-dash", time.Now().Add(-48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A retention of an hour, long past.
	rdb := redistest.Client(t) // the test's database, which the store uses
	rdb.HSet(ctx, "imp:{imp-dash}:meta", "expires_at", time.Now().Add(-47*time.Hour).Format(time.RFC3339Nano))
	rdb.Del(ctx, "imp:{imp-dash}:results", "imp:{imp-dash}:input")
	for _, file := range []string{"results.csv", "failed.csv"} {
		code, body := get(t, srv.URL+"/imports/imp-dash/"+file, "")
		if code != http.StatusGone || !strings.Contains(body, "deleted from Redis") || strings.Contains(body, "pending") {
			t.Errorf("%s after retention: %d %s", file, code, body)
		}
	}
	if code, body := get(t, srv.URL+"/imports/imp-dash/summary.json", ""); code != 200 || !strings.Contains(body, `"succeeded": 3`) {
		t.Errorf("summary.json after retention: %d %s", code, body)
	}
	if code, body := get(t, srv.URL+"/imports/imp-dash", ""); code != 200 || !strings.Contains(body, "were deleted from Redis") {
		t.Errorf("the import's page after retention: %d\n%s", code, body)
	}
}

// An idle keep-alive connection is closed after the idle timeout.
func TestIdleConnectionsAreClosed(t *testing.T) {
	rdb := redistest.Client(t)
	h, err := dashboard.New(dashboard.Config{Store: store.New(rdb), Reports: report.Files{}, Redis: asynq.RedisClientOpt{Addr: rdb.Options().Addr, DB: rdb.Options().DB}, IdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config = h.Server()
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	buf := make([]byte, 4096)
	if _, err := conn.Read(buf); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Read(buf); err != io.EOF {
		t.Errorf("an idle connection after the idle timeout: %v, want it closed (EOF)", err)
	}
}

// With --allow-actions, a change must come from the dashboard's own pages:
// a request from another origin (or from none) is refused, so a page
// elsewhere cannot make a logged-in browser cancel an import. The Cancel
// button asks first.
func TestActionsNeedTheSameOrigin(t *testing.T) {
	st, srv := running(t, 3, dashboard.Config{AllowActions: true, Auth: "ops:s3cret",
		Cancel: func(ctx context.Context, id string) error {
			_, err := cancelled.store.Cancel(ctx, id, time.Now())
			return err
		}})
	cancelled.store = st
	post := func(origin, referer string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/imports/imp-dash/cancel", nil)
		req.SetBasicAuth("ops", "s3cret")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if referer != "" {
			req.Header.Set("Referer", referer)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tt := range []struct{ origin, referer string }{{"", ""}, {"https://evil.example", ""}, {"", "https://evil.example/page"}, {"null", ""}} {
		if code := post(tt.origin, tt.referer); code != http.StatusForbidden {
			t.Errorf("cancel from origin %q referer %q: %d, want 403", tt.origin, tt.referer, code)
		}
	}
	if imp, _ := st.Import(context.Background(), "imp-dash"); !imp.CancelledAt.IsZero() {
		t.Fatal("a cross-site request cancelled the import")
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/monitoring/api/queues/default", nil)
	req.SetBasicAuth("ops", "s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("asynqmon's DELETE from no origin: %v %v, want 403", resp, err)
	}
	if code := post(srv.URL, ""); code != http.StatusSeeOther {
		t.Errorf("cancel from the dashboard's own page: %d, want 303", code)
	}
	if imp, _ := st.Import(context.Background(), "imp-dash"); imp.CancelledAt.IsZero() {
		t.Error("the same-origin cancel did not cancel")
	}
	_, srv2 := running(t, 3, dashboard.Config{AllowActions: true, Cancel: func(context.Context, string) error { return nil }})
	if _, body := get(t, srv2.URL+"/imports/imp-dash", ""); !strings.Contains(body, "return confirm(") {
		t.Error("the Cancel button does not ask first")
	}
}

var cancelled struct{ store *store.Store }

// Outcomes show in the reports' order with their labels; times say their
// zone; rows that did not succeed name their resident.
func TestPagesReadAsReports(t *testing.T) {
	st, srv := running(t, 6, dashboard.Config{})
	resolve(t, st, 1, 2, importer.Succeeded)
	resolve(t, st, 3, 3, importer.TimedOut)
	resolve(t, st, 4, 4, importer.Failed)
	_, body := get(t, srv.URL+"/imports/imp-dash", "")
	order := []string{"2 succeeded", "1 failed", "1 timed out"}
	last := -1
	for _, o := range order {
		i := strings.Index(body, o)
		if i < 0 || i < last {
			t.Fatalf("the import's page shows %q out of order or not at all:\n%s", o, body)
		}
		last = i
	}
	if !strings.Contains(body, "Resident &lt;r@example.com&gt;") {
		t.Errorf("rows that did not succeed do not name their resident:\n%s", body)
	}
	zone := time.Now().Format("MST")
	if _, list := get(t, srv.URL+"/imports", ""); !strings.Contains(list, " "+zone+"</td>") {
		t.Errorf("the Imports page's times do not say their zone (%s)", zone)
	}
}
