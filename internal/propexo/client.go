// Package propexo is the HTTP client of the Propexo write API. It implements
// importer.WriteAPI: one HTTP request per call, no retries of its own (the
// queue decides when to try again), and every failure classified as an
// *importer.APIError whose text never holds the API key.
package propexo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API's address, e.g. https://api.sandbox.propexo.com.
	// Required.
	BaseURL string
	// APIKey is the bearer token. Required; never logged.
	APIKey string
	// HTTPClient sends the requests. Default: a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds one request. Default 30s.
	Timeout time.Duration
	// UserAgent is sent with every request. Default "propexo-importer".
	UserAgent string
	// OnAnswer, when set, sees the status and headers of every answer and
	// when its request was sent (the rate limiter reads
	// x-ratelimit-remaining there, news of the window the request was
	// counted in).
	OnAnswer func(status int, header http.Header, sent time.Time)
}

// Client talks to the write API.
type Client struct {
	base     *url.URL
	key      string
	http     *http.Client
	agent    string
	onAnswer func(int, http.Header, time.Time)
}

var _ importer.WriteAPI = (*Client)(nil)

// New returns a Client, or an error that says which setting is wrong.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("the API URL is not set")
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, errors.New("the API URL is not a URL")
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("the API URL %q is not an http(s) URL", redacted(base))
	}
	if cfg.APIKey == "" {
		return nil, errors.New("the API key is not set")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.HTTPClient == nil {
		// Every worker slot talks to the one API host: keep a connection
		// per slot alive (Go's default keeps two, and opens a new one for
		// nearly every request of a busy worker).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		t.MaxIdleConns = 64
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout, Transport: t}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "propexo-importer"
	}
	return &Client{base: base, key: cfg.APIKey, http: cfg.HTTPClient, agent: cfg.UserAgent, onAnswer: cfg.OnAnswer}, nil
}

// BaseURL returns the API's address, for messages: a user name or password
// in it is hidden.
func (c *Client) BaseURL() string { return redacted(c.base) }

// redacted renders a URL with its user name and password hidden.
func redacted(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	c := *u
	c.User = url.User("redacted")
	return c.String()
}

// CreateResident posts a resident to the vendor's create path and returns
// the write's job id.
func (c *Client) CreateResident(ctx context.Context, vendor importer.Vendor, r importer.Resident) (string, error) {
	return c.write(ctx, http.MethodPost, vendor.CreatePath(), r.Body())
}

// write sends a write (a create or an update) and returns its job id: the
// top-level job_id of the published file's answer, or the meta.job_id the
// docs pages show. An answer without one may still have made a job: it is
// "maybe sent".
func (c *Client) write(ctx context.Context, method, path string, body any) (string, error) {
	var answer struct {
		Meta struct {
			JobID string `json:"job_id"`
		} `json:"meta"`
		JobID string `json:"job_id"`
	}
	if err := c.do(ctx, method, path, nil, body, &answer); err != nil {
		return "", err
	}
	jobID := answer.JobID
	if jobID == "" {
		jobID = answer.Meta.JobID
	}
	if jobID == "" {
		return "", &importer.APIError{Kind: importer.KindUnavailable, Op: method + " " + opPath(path), Status: http.StatusOK, MaybeSent: true,
			Message: "the answer carries no job id"}
	}
	return jobID, nil
}

// WriteStatus reads the state of a write job.
func (c *Client) WriteStatus(ctx context.Context, jobID string) (importer.WriteStatus, error) {
	var answer struct {
		WriteStatus     string  `json:"write_status"`
		Errors          []any   `json:"errors"`
		CreatedRecordID *string `json:"created_record_id"`
	}
	path := "/v1/admin/write-status/" + url.PathEscape(jobID)
	if err := c.do(ctx, http.MethodGet, path, nil, nil, &answer); err != nil {
		// The API's answer for a job it does not know is undocumented:
		// 404 or 400. Either way the job id is unknown, not the request
		// malformed (the id is the API's own).
		var apiErr *importer.APIError
		if errors.As(err, &apiErr) && (apiErr.Status == http.StatusNotFound || apiErr.Status == http.StatusBadRequest) {
			apiErr.Kind = importer.KindNotFound
		}
		return importer.WriteStatus{}, err
	}
	st := importer.WriteStatus{State: importer.WriteState(strings.ToUpper(answer.WriteStatus)), Errors: importer.ReadableErrors(answer.Errors)}
	if answer.CreatedRecordID != nil {
		st.CreatedRecordID = *answer.CreatedRecordID
	}
	switch st.State {
	case importer.WritePending, importer.WriteSuccess, importer.WritePartialSuccess, importer.WriteFailure:
		return st, nil
	}
	return importer.WriteStatus{}, &importer.APIError{Kind: importer.KindUnavailable, Op: "GET /v1/admin/write-status/", Status: http.StatusOK,
		Message: fmt.Sprintf("unknown write_status %q", answer.WriteStatus)}
}

// GetResident reads one resident.
func (c *Client) GetResident(ctx context.Context, id string) (importer.ResidentRecord, error) {
	var answer struct {
		Results residentJSON `json:"results"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/residents/"+url.PathEscape(id), nil, nil, &answer); err != nil {
		return importer.ResidentRecord{}, err
	}
	return answer.Results.record(), nil
}

// RetryWrite retries a FAILURE write and returns the new job's id.
func (c *Client) RetryWrite(ctx context.Context, jobID string) (string, error) {
	var answer struct {
		Success bool   `json:"success"`
		JobID   string `json:"job_id"`
	}
	if err := c.do(ctx, http.MethodPost, "/v1/admin/retry-write/"+url.PathEscape(jobID), nil, struct{}{}, &answer); err != nil {
		return "", err
	}
	if !answer.Success || answer.JobID == "" {
		return "", &importer.APIError{Kind: importer.KindRejected, Op: "POST /v1/admin/retry-write/", Status: http.StatusOK,
			Message: "the API did not retry the write"}
	}
	return answer.JobID, nil
}

// maxLookupPages bounds a lookup by name, which pages through an
// integration's residents: 10 pages of 250.
const maxLookupPages = 10

// ErrTooManyToSearch is returned by FindResidents when a lookup by name
// would page through more residents than it may.
var ErrTooManyToSearch = errors.New("too many residents to search by name")

// FindResidents lists the residents that match a query, all pages (see
// ListResidents). By email the API filters; whether email_1= ignores case
// is undocumented, so it is asked as written and, when that differs, in
// lower case (a PMS that keeps emails in lower case). By name (no
// documented filter) it pages through the integration's residents and
// checks each record itself, at most maxLookupPages pages.
func (c *Client) FindResidents(ctx context.Context, q importer.ResidentQuery) ([]importer.ResidentRecord, error) {
	if q.Email == "" {
		return c.findByName(ctx, q)
	}
	var out []importer.ResidentRecord
	seen := map[string]bool{}
	for _, email := range slices.Compact([]string{q.Email, strings.ToLower(q.Email)}) {
		scope := importer.ListScope{IntegrationID: q.IntegrationID, Email: email}
		for offset := 0; ; {
			recs, more, _, err := c.ListResidents(ctx, scope, offset)
			if err != nil {
				return nil, err
			}
			for _, rec := range recs {
				if !seen[rec.ID] {
					seen[rec.ID] = true
					out = append(out, rec)
				}
			}
			if !more {
				break
			}
			offset += len(recs)
		}
	}
	return out, nil
}

func (c *Client) findByName(ctx context.Context, q importer.ResidentQuery) ([]importer.ResidentRecord, error) {
	scope := importer.ListScope{IntegrationID: q.IntegrationID}
	var out []importer.ResidentRecord
	for page, offset := 0, 0; ; page++ {
		if page == maxLookupPages {
			return nil, ErrTooManyToSearch
		}
		recs, more, _, err := c.ListResidents(ctx, scope, offset)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if q.Matches(rec) {
				out = append(out, rec)
			}
		}
		if !more {
			return out, nil
		}
		offset += len(recs)
	}
}

// UpdateResident submits an update of resident id through the generic
// PUT /v1/residents/{id} with the fields given, by the PUT's names (the
// caller puts them in the PUT schema's terms: no integration, property or
// lease, no null), and returns the write's job id. The generic PUT, not a
// vendor's: it requires no field (Rent Manager's requires the rent terms,
// which no read shows, so sending them would overwrite blind). Sent twice
// with the same fields, it changes nothing the second time.
func (c *Client) UpdateResident(ctx context.Context, id string, fields map[string]string) (string, error) {
	body := make(map[string]any, len(fields))
	for f, v := range fields {
		body[f] = v
		if f == importer.FieldRentDueDay {
			n, err := strconv.Atoi(v)
			if err != nil {
				return "", fmt.Errorf("error encoding the update of %s: rent_due_day %q is not a number", id, v)
			}
			body[f] = n
		}
	}
	return c.write(ctx, http.MethodPut, "/v1/residents/"+url.PathEscape(id), body)
}

// ListResidents reads one page of the residents in scope, oldest first
// (created_at:asc, so residents created meanwhile do not shift the pages).
// more says whether another page follows: the API's hasMore when it says,
// else whether the page was full and total (when given) is not reached.
func (c *Client) ListResidents(ctx context.Context, scope importer.ListScope, offset int) ([]importer.ResidentRecord, bool, int, error) {
	params := url.Values{"integration_id": {scope.IntegrationID}, "limit": {strconv.Itoa(importer.ListPageSize)},
		"offset": {strconv.Itoa(offset)}, "order-by": {"created_at:asc"}}
	for name, v := range map[string]string{"property_id": scope.PropertyID, "x_id": scope.XID, "x_property_id": scope.XPropertyID, "email_1": scope.Email} {
		if v != "" {
			params.Set(name, v)
		}
	}
	var answer struct {
		Meta struct {
			HasMore *bool `json:"hasMore"`
			Total   *int  `json:"total"`
		} `json:"meta"`
		Results []residentJSON `json:"results"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/residents/", params, nil, &answer); err != nil {
		return nil, false, 0, err
	}
	page := make([]importer.ResidentRecord, len(answer.Results))
	for i, r := range answer.Results {
		page[i] = r.record()
	}
	total := -1
	if answer.Meta.Total != nil {
		total = *answer.Meta.Total
	}
	var more bool
	switch {
	case len(page) == 0:
		more = false
	case answer.Meta.HasMore != nil:
		more = *answer.Meta.HasMore
	case total >= 0:
		more = offset+len(page) < total
	default:
		more = len(page) >= importer.ListPageSize
	}
	return page, more, total, nil
}

// IntegrationLimits reads, for each integration that publishes one, the most
// write jobs it runs at once (max_job_concurrency in
// GET /v1/admin/integrations/): writes beyond it wait in Propexo's queue.
// An integration that publishes none is not in the map.
func (c *Client) IntegrationLimits(ctx context.Context) (map[string]int, error) {
	limits := map[string]int{}
	all, err := c.integrations(ctx)
	for _, it := range all {
		if it.MaxJobConcurrency != nil && *it.MaxJobConcurrency > 0 {
			limits[it.ID] = *it.MaxJobConcurrency
		}
	}
	return limits, err
}

// IntegrationVendor returns the vendor the API names for an integration
// ("RENTMANAGER"), and false when it lists no such integration.
func (c *Client) IntegrationVendor(ctx context.Context, id string) (string, bool, error) {
	all, err := c.integrations(ctx)
	if err != nil {
		return "", false, err
	}
	for _, it := range all {
		if it.ID == id {
			return it.Vendor, true, nil
		}
	}
	return "", false, nil
}

// integrationJSON is an integration as GET /v1/admin/integrations/ lists it.
type integrationJSON struct {
	ID                string `json:"id"`
	Vendor            string `json:"vendor"`
	MaxJobConcurrency *int   `json:"max_job_concurrency"`
}

// integrations lists every integration, page by page.
func (c *Client) integrations(ctx context.Context) ([]integrationJSON, error) {
	var out []integrationJSON
	for offset := 0; ; {
		var answer struct {
			Meta struct {
				HasMore *bool `json:"hasMore"`
			} `json:"meta"`
			Results []integrationJSON `json:"results"`
		}
		params := url.Values{"limit": {"100"}, "offset": {strconv.Itoa(offset)}}
		if err := c.do(ctx, http.MethodGet, "/v1/admin/integrations/", params, nil, &answer); err != nil {
			return nil, err
		}
		out = append(out, answer.Results...)
		offset += len(answer.Results)
		if len(answer.Results) == 0 || answer.Meta.HasMore == nil || !*answer.Meta.HasMore {
			return out, nil
		}
	}
}

// Subscribe registers a webhook subscription: deliveries of triggers (of
// model, for DATA_NEW and DATA_UPDATE) to url, signed with secret, active
// at once.
func (c *Client) Subscribe(ctx context.Context, hookURL, secret string, triggers []string, model string) (importer.WebhookSubscription, error) {
	body := map[string]any{"url": hookURL, "triggers": triggers, "model": model, "secret": secret, "headers": []any{}, "active": true}
	return c.subscription(ctx, http.MethodPost, "/v1/webhooks/", body)
}

// UpdateSubscription sets a subscription's triggers, model and secret, and
// makes it active.
func (c *Client) UpdateSubscription(ctx context.Context, id, secret string, triggers []string, model string) (importer.WebhookSubscription, error) {
	body := map[string]any{"triggers": triggers, "model": model, "secret": secret, "active": true}
	return c.subscription(ctx, http.MethodPut, "/v1/webhooks/"+url.PathEscape(id), body)
}

// subscription sends a subscription's POST or PUT and reads the one it
// answers ({result: ...}).
func (c *Client) subscription(ctx context.Context, method, path string, body any) (importer.WebhookSubscription, error) {
	var answer struct {
		Result *subscriptionJSON `json:"result"`
	}
	if err := c.do(ctx, method, path, nil, body, &answer); err != nil {
		return importer.WebhookSubscription{}, err
	}
	if answer.Result == nil || answer.Result.ID == "" {
		return importer.WebhookSubscription{}, &importer.APIError{Kind: importer.KindUnavailable, Op: method + " " + opPath(path), Status: http.StatusOK,
			Message: "the answer names no subscription"}
	}
	return answer.Result.subscription(), nil
}

// Subscriptions lists the webhook subscriptions, active and not (the API
// lists one or the other: active=true, its default, then active=false).
func (c *Client) Subscriptions(ctx context.Context) ([]importer.WebhookSubscription, error) {
	var out []importer.WebhookSubscription
	for _, active := range []string{"true", "false"} {
		for offset := 0; ; {
			var answer struct {
				Meta struct {
					HasMore *bool `json:"hasMore"`
				} `json:"meta"`
				Results []subscriptionJSON `json:"results"`
			}
			params := url.Values{"active": {active}, "offset": {strconv.Itoa(offset)}, "limit": {"100"}, "order-by": {"created_at:asc"}}
			if err := c.do(ctx, http.MethodGet, "/v1/webhooks/", params, nil, &answer); err != nil {
				return nil, err
			}
			for _, s := range answer.Results {
				out = append(out, s.subscription())
			}
			offset += len(answer.Results)
			if len(answer.Results) == 0 || (answer.Meta.HasMore == nil && len(answer.Results) < 100) || (answer.Meta.HasMore != nil && !*answer.Meta.HasMore) {
				break
			}
		}
	}
	return out, nil
}

// Unsubscribe deletes a webhook subscription.
func (c *Client) Unsubscribe(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/webhooks/"+url.PathEscape(id), nil, struct{}{}, nil)
}

// subscriptionJSON is a subscription as the API answers it: its triggers
// as objects ({id, trigger, model}), not the strings posted. Its secret is
// read only to be hashed (see importer.WebhookSubscription.SecretSHA256).
type subscriptionJSON struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Triggers []struct {
		Trigger string  `json:"trigger"`
		Model   *string `json:"model"`
	} `json:"triggers"`
	Active    bool   `json:"active"`
	Secret    string `json:"secret"`
	CreatedAt string `json:"created_at"`
}

func (s subscriptionJSON) subscription() importer.WebhookSubscription {
	out := importer.WebhookSubscription{ID: s.ID, URL: s.URL, Active: s.Active, SecretSHA256: importer.SecretSHA256(s.Secret)}
	for _, t := range s.Triggers {
		out.Triggers = append(out.Triggers, t.Trigger)
		if t.Model != nil && out.Model == "" {
			out.Model = *t.Model
		}
	}
	out.CreatedAt, _ = time.Parse(time.RFC3339, s.CreatedAt)
	return out
}

// do sends one request and decodes a 2xx answer into out (unless out is
// nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	op := method + " " + opPath(path)
	u := *c.base
	u.Path = c.base.Path + path
	if query != nil {
		u.RawQuery = query.Encode()
	}
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("error encoding %s body: %w", op, err)
		}
		reader = bytes.NewReader(b)
	}
	var wrote atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, method, u.String(), reader)
	if err != nil {
		return fmt.Errorf("error building %s: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	sent := time.Now()
	importer.TallyRequest(ctx)
	resp, err := c.http.Do(req)
	if err != nil {
		return &importer.APIError{Kind: importer.KindUnavailable, Op: op, MaybeSent: wrote.Load(), Err: scrub(err)}
	}
	defer resp.Body.Close()
	if c.onAnswer != nil {
		c.onAnswer(resp.StatusCode, resp.Header, sent)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return &importer.APIError{Kind: importer.KindUnavailable, Op: op, Status: resp.StatusCode, MaybeSent: true, Err: scrub(err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := statusError(op, resp, raw)
		// A 5xx answer to a write may come after the write took effect: a
		// gateway that gave up waiting (502, 504), or the API failing
		// after it accepted the write (500). The API has no idempotency
		// key, so such a write must be looked up, never sent again
		// blindly.
		e.MaybeSent = method == http.MethodPost && resp.StatusCode >= 500
		return e
	}
	if out == nil {
		return nil // an answer without news (a delete)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &importer.APIError{Kind: importer.KindUnavailable, Op: op, Status: resp.StatusCode, MaybeSent: true,
			Message: "the answer is not the JSON expected: " + err.Error()}
	}
	return nil
}

// opPath shortens a path to its route, so that error text and metrics do not
// carry ids.
func opPath(path string) string {
	for _, prefix := range []string{"/v1/admin/write-status/", "/v1/admin/retry-write/", "/v1/webhooks/"} {
		if strings.HasPrefix(path, prefix) {
			return prefix
		}
	}
	if rest, ok := strings.CutPrefix(path, "/v1/residents/"); ok && rest != "" && !strings.HasSuffix(rest, "/") {
		return "/v1/residents/{id}"
	}
	return path
}

func statusError(op string, resp *http.Response, raw []byte) *importer.APIError {
	e := &importer.APIError{Op: op, Status: resp.StatusCode}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details struct {
				Issues []struct {
					Path    []any  `json:"path"`
					Message string `json:"message"`
				} `json:"issues"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		var parts []string
		for _, is := range body.Error.Details.Issues {
			var path []string
			for _, p := range is.Path {
				path = append(path, fmt.Sprint(p))
			}
			parts = append(parts, strings.Join(path, ".")+": "+is.Message)
		}
		if len(parts) > 0 {
			e.Message = strings.TrimSpace(e.Message + " (" + strings.Join(parts, "; ") + ")")
		}
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	switch s := resp.StatusCode; {
	case s == http.StatusBadRequest || s == http.StatusMethodNotAllowed || s == http.StatusUnprocessableEntity:
		e.Kind = importer.KindRejected
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Kind = importer.KindUnauthorized
	case s == http.StatusTooManyRequests:
		e.Kind = importer.KindRateLimited
	case s == http.StatusNotFound:
		e.Kind = importer.KindNotFound
	default:
		e.Kind = importer.KindUnavailable
	}
	return e
}

// scrub drops the URL from a transport error: the URL is known from Op, and
// the message stays short.
func scrub(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// residentJSON is a resident as the API answers it: every field may be
// null, a number where text is expected, or missing.
type residentJSON map[string]any

func (r residentJSON) record() importer.ResidentRecord {
	text := func(name string) string {
		switch v := r[name].(type) {
		case string:
			return v
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			return strconv.FormatBool(v)
		}
		return ""
	}
	rec := importer.ResidentRecord{ID: text("id")}
	for _, f := range importer.Fields() {
		rec.Set(f, text(f))
	}
	if t, err := time.Parse(time.RFC3339, text("created_at")); err == nil {
		rec.CreatedAt = t
	}
	if t, err := time.Parse(time.RFC3339, text("updated_at")); err == nil {
		rec.UpdatedAt = t
	}
	if t, err := time.Parse(time.RFC3339, text("last_seen")); err == nil {
		rec.LastSeen = t
	}
	return rec
}
