// Package dashboard serves the importer's web UI: Asynq's monitoring UI
// (asynqmon, mounted at /monitoring/) and, beside it, the Imports page that
// asynqmon cannot show — every import with its file, start, progress, counts
// per outcome, rows per minute, time left and its report to download, and
// one import's failed rows with their errors. Reports are streamed from
// Redis, so any machine that reaches the Redis can serve them.
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/propexo-importer/importer/importer"
)

//go:embed templates/*.html
var templates embed.FS

// Config configures the dashboard.
type Config struct {
	// Redis is the connection of the queue, for asynqmon. Required.
	Redis asynq.RedisConnOpt
	// Store reads the imports. Required.
	Store Store
	// Reports renders the report files for download. Required.
	Reports Reports
	// AllowActions lets users change things: asynqmon's actions (delete,
	// run, archive tasks...) and cancelling an import. Default read-only.
	AllowActions bool
	// Auth, "user:password", asks every request for basic auth. Default
	// none.
	Auth string
	// Cancel cancels an import; required with AllowActions.
	Cancel func(ctx context.Context, id string) error
	// Schedules lists the schedules the running schedulers registered,
	// with their next and last firings, for the Schedules page. Default:
	// the page says there are none.
	Schedules func(ctx context.Context) ([]importer.ScheduleStatus, error)
	// Log receives the dashboard's errors. Default: discarded.
	Log *slog.Logger
	// AllowedHosts are the host names (without port) a request may name in
	// its Host header when there is no Auth, beside loopback ones
	// (localhost, 127.0.0.1, ::1): a page on another site that resolves
	// its own name to this address (DNS rebinding) is refused. Default:
	// loopback only.
	AllowedHosts []string
	// ReadTimeout, WriteTimeout and IdleTimeout bound a request's reading,
	// an answer's writing (report downloads get ten times as long) and an
	// idle keep-alive connection. Defaults 30s, 2m and 60s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// PageSize is how many imports the Imports page shows at once.
const PageSize = 50

// Store is what the dashboard reads of the imports' state.
type Store interface {
	ImportsPage(ctx context.Context, offset, limit int) (ids []string, total int, err error)
	Import(ctx context.Context, id string) (importer.Import, error)
	Progress(ctx context.Context, id string) (importer.Progress, error)
	Summary(ctx context.Context, id string) (importer.Summary, error)
	Rows(ctx context.Context, id string, total int) iter.Seq2[importer.ReportRow, error]
}

// Reports streams an import's report files for download; the report
// package's Files does.
type Reports interface {
	// ContentType is the media type of a report file, "" for a name that
	// is not one.
	ContentType(name string) string
	// Stream writes the report file named to w.
	Stream(w io.Writer, name string, imp importer.Import, sum importer.Summary, rows iter.Seq2[importer.ReportRow, error]) error
}

// summaryFile is the report file made of counts only: it stays when the
// rows expire.
const summaryFile = "summary.json"

// Handler is the dashboard's http.Handler.
type Handler struct {
	cfg  Config
	mux  *http.ServeMux
	page *template.Template
}

// New returns the dashboard.
func New(cfg Config) (*Handler, error) {
	if cfg.Auth != "" && !strings.Contains(cfg.Auth, ":") {
		return nil, errors.New(`--auth: use "user:password"`)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 2 * time.Minute
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
	}
	page, err := template.New("").Funcs(template.FuncMap{
		"pct":      func(s importer.Status) string { return fmt.Sprintf("%.0f", s.Percent()) },
		"left":     left,
		"when":     when,
		"add":      func(a, b int) int { return a + b },
		"outcomes": outcomes,
		// order is every outcome in the reports' order, for the pages'
		// scripts: they show each count the server would.
		"order": func() []importer.Outcome { return importer.Outcomes },
	}).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("error parsing the dashboard's templates: %w", err)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), page: page}
	mon := asynqmon.New(asynqmon.Options{RootPath: "/monitoring", RedisConnOpt: cfg.Redis, ReadOnly: !cfg.AllowActions})
	h.mux.Handle("/monitoring/", mon)
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/imports", http.StatusFound) })
	h.mux.HandleFunc("GET /imports", h.list)
	h.mux.HandleFunc("GET /imports.json", h.listJSON)
	h.mux.HandleFunc("GET /imports/{id}", h.one)
	h.mux.HandleFunc("GET /imports/{id}/status.json", h.oneJSON)
	h.mux.HandleFunc("GET /imports/{id}/{file}", h.download)
	h.mux.HandleFunc("POST /imports/{id}/cancel", h.cancel)
	h.mux.HandleFunc("GET /schedules", h.schedules)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	return h, nil
}

// Server returns an HTTP server of the dashboard with its timeouts.
func (h *Handler) Server() *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: h.cfg.ReadTimeout,
		WriteTimeout: h.cfg.WriteTimeout, IdleTimeout: h.cfg.IdleTimeout}
}

// hostAllowed reports whether a request's Host names this dashboard:
// loopback, or one of the configured names.
func (h *Handler) hostAllowed(host string) bool {
	name := host
	if hn, _, err := net.SplitHostPort(host); err == nil {
		name = hn
	}
	name = strings.ToLower(strings.Trim(name, "[]"))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	if ip := net.ParseIP(name); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, allowed := range h.cfg.AllowedHosts {
		if strings.EqualFold(name, allowed) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether a request that changes something comes from
// the dashboard's own pages: its Origin (or, without one, its Referer) is
// this host. A page elsewhere cannot make a logged-in browser cancel an
// import (cross-site request forgery).
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		from = r.Header.Get("Referer")
	}
	u, err := url.Parse(from)
	return from != "" && err == nil && strings.EqualFold(u.Host, r.Host)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Auth == "" && !h.hostAllowed(r.Host) {
		// Without credentials, a page elsewhere that points its own host
		// name at this address must not read it (DNS rebinding).
		http.Error(w, "unknown host name: start the dashboard with --allowed-hosts "+r.Host+" to serve it under that name", http.StatusMisdirectedRequest)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !sameOrigin(r) {
			http.Error(w, "a change must come from the dashboard's own pages (same Origin)", http.StatusForbidden)
			return
		}
	}
	if h.cfg.Auth != "" && r.URL.Path != "/healthz" {
		user, pass, ok := r.BasicAuth()
		wantUser, wantPass, _ := strings.Cut(h.cfg.Auth, ":")
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(wantPass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="importer"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	h.mux.ServeHTTP(w, r)
}

// when shows a time in the dashboard's time zone, saying which.
func when(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05 MST") }

// outcomeCount is an outcome's count as the pages show it.
type outcomeCount struct {
	Outcome importer.Outcome
	Label   string
	N       int
}

// outcomes lists the outcomes that have rows, in the reports' order.
func outcomes(counts map[importer.Outcome]int) []outcomeCount {
	var out []outcomeCount
	for _, o := range importer.Outcomes {
		if n := counts[o]; n > 0 {
			out = append(out, outcomeCount{Outcome: o, Label: o.Label(), N: n})
		}
	}
	return out
}

func left(s importer.Status) string {
	if s.SecondsLeft <= 0 {
		return ""
	}
	return (time.Duration(s.SecondsLeft) * time.Second).String()
}

// statuses returns one page of imports, newest first, and the number of
// pages.
func (h *Handler) statuses(ctx context.Context, page int) ([]importer.Status, int, error) {
	ids, total, err := h.cfg.Store.ImportsPage(ctx, (page-1)*PageSize, PageSize)
	if err != nil {
		return nil, 0, err
	}
	out := []importer.Status{}
	for _, id := range ids {
		s, _, err := h.status(ctx, id)
		if errors.Is(err, importer.ErrImportNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, 0, err
		}
		out = append(out, s)
	}
	return out, max(1, (total+PageSize-1)/PageSize), nil
}

// page reads the page asked for: ?page=N, 1 by default.
func page(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

func (h *Handler) status(ctx context.Context, id string) (importer.Status, importer.Import, error) {
	imp, err := h.cfg.Store.Import(ctx, id)
	if err != nil {
		return importer.Status{}, imp, err
	}
	p, err := h.cfg.Store.Progress(ctx, id)
	if err != nil {
		return importer.Status{}, imp, err
	}
	return importer.NewStatus(imp, p, time.Now()), imp, nil
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, importer.ErrImportNotFound) {
		http.Error(w, "no such import", http.StatusNotFound)
		return
	}
	h.cfg.Log.ErrorContext(r.Context(), "dashboard", "path", r.URL.Path, "error", err)
	http.Error(w, "the dashboard cannot read Redis right now", http.StatusServiceUnavailable)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	n := page(r)
	all, pages, err := h.statuses(r.Context(), n)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.render(w, "imports.html", map[string]any{"Imports": all, "Actions": h.cfg.AllowActions, "Page": n, "Pages": pages})
}

// schedules serves the Schedules page: each schedule's next firing, what
// its last firing did and the imports it made.
func (h *Handler) schedules(w http.ResponseWriter, r *http.Request) {
	var all []importer.ScheduleStatus
	if h.cfg.Schedules != nil {
		var err error
		if all, err = h.cfg.Schedules(r.Context()); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	h.render(w, "schedules.html", map[string]any{"Schedules": all})
}

// listJSON serves a page of imports as JSON. The page polls it; an answer
// that has not changed since the last is a 304 without a body.
func (h *Handler) listJSON(w http.ResponseWriter, r *http.Request) {
	all, _, err := h.statuses(r.Context(), page(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	body, err := json.Marshal(all)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(append(body, '\n')); err != nil {
		h.cfg.Log.DebugContext(r.Context(), "imports.json not sent", "error", err)
	}
}

// expired reports whether an import's rows were deleted after its
// retention, and says so to the client.
func (h *Handler) expired(w http.ResponseWriter, imp importer.Import) bool {
	if imp.ExpiresAt.IsZero() || time.Now().Before(imp.ExpiresAt) {
		return false
	}
	http.Error(w, fmt.Sprintf("the rows of import %s were deleted from Redis at %s, after its retention period; its counts are still on the Imports page and in summary.json",
		imp.ID, imp.ExpiresAt.Format(time.RFC3339)), http.StatusGone)
	return true
}

// failedRows caps the rows one import's page lists.
const failedRows = 500

// failedRow is a row that did not succeed, as an import's page lists it:
// with whom it is about.
type failedRow struct {
	importer.RowResult
	Label, Who string
}

// oneJSON serves one import's status, which its page polls.
func (h *Handler) oneJSON(w http.ResponseWriter, r *http.Request) {
	s, _, err := h.status(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(s); err != nil {
		h.cfg.Log.DebugContext(r.Context(), "status not sent", "error", err)
	}
}

func (h *Handler) one(w http.ResponseWriter, r *http.Request) {
	s, imp, err := h.status(r.Context(), r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !imp.ExpiresAt.IsZero() && time.Now().After(imp.ExpiresAt) {
		h.render(w, "import.html", map[string]any{"S": s, "Expired": imp.ExpiresAt})
		return
	}
	var failed []failedRow
	more := 0
	total := max(imp.Total, 0)
	for row, err := range h.cfg.Store.Rows(r.Context(), imp.ID, total) {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		o := row.Result.Outcome
		if o == "" || o.Fine() {
			continue
		}
		if len(failed) == failedRows {
			more++
			continue
		}
		who := imp.Options.Mapping.RowOf(row.Result.Row, row.Result.Line, row.Columns).Who()
		failed = append(failed, failedRow{RowResult: row.Result, Label: o.Label(), Who: who})
	}
	h.render(w, "import.html", map[string]any{"S": s, "Failed": failed, "More": more, "Actions": h.cfg.AllowActions && !imp.Finished(),
		"NotOK": s.NotFine})
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request) {
	id, file := r.PathValue("id"), r.PathValue("file")
	imp, err := h.cfg.Store.Import(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	contentType := h.cfg.Reports.ContentType(file)
	if contentType == "" {
		http.NotFound(w, r)
		return
	}
	sum, err := h.cfg.Store.Summary(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if file != summaryFile && h.expired(w, imp) {
		return
	}
	// A big report takes a while to stream.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * h.cfg.WriteTimeout)) // a writer without deadlines has none to extend
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", id+"-"+file))
	w.Header().Set("Cache-Control", "no-store")
	err = h.cfg.Reports.Stream(w, file, imp, sum, h.cfg.Store.Rows(r.Context(), id, max(imp.Total, 0)))
	if err != nil {
		h.cfg.Log.ErrorContext(r.Context(), "report download broke off", "import_id", id, "file", file, "error", err)
	}
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.AllowActions || h.cfg.Cancel == nil {
		http.Error(w, "the dashboard is read-only (start it with --allow-actions)", http.StatusForbidden)
		return
	}
	if err := h.cfg.Cancel(r.Context(), r.PathValue("id")); err != nil {
		h.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/imports/"+r.PathValue("id"), http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.page.ExecuteTemplate(w, name, data); err != nil {
		h.cfg.Log.Error("dashboard template", "template", name, "error", err)
	}
}
