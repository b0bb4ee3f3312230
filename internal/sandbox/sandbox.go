// Package sandbox is a local server that behaves like the Propexo write API:
// both create paths with each vendor's rules, 400 and 405 error bodies,
// writes that stay PENDING for a configurable latency and then succeed or
// fail, reading and listing residents, retrying failed writes, and 401 for a
// wrong token. The importer's tests and benchmarks run against it over real
// HTTP, and `importer run` starts one in-process when no API is configured.
package sandbox

import (
	"container/heap"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config are the sandbox's knobs. The zero value of each field is a working
// default, except APIKey.
type Config struct {
	// APIKey is the bearer token every request must carry.
	APIKey string
	// Latency is how long a write stays PENDING. Default DefaultLatency.
	Latency Latency
	// FailureRate is the share of writes, 0 to 1, that end in FAILURE
	// with a PMS error. Default 0.
	FailureRate float64
	// PartialRate is the share of writes, 0 to 1, that end in
	// PARTIAL_SUCCESS: the resident is created, a later step is not.
	// Default 0.
	PartialRate float64
	// Seed makes the random choices (latencies, failures) repeatable.
	// Default 1.
	Seed uint64
	// Integrations maps integration ids to vendors. Default
	// DefaultIntegrations.
	Integrations map[string]string
	// Properties maps property ids to their integration id. A create that
	// names a property of its integration that is not here fails at the
	// PMS, after the latency. Default DefaultProperties.
	Properties map[string]string
	// StuckRate is the share of writes, 0 to 1, that never leave PENDING.
	// Default 0.
	StuckRate float64
	// RateLimit is how many requests a window allows, all endpoints
	// together. Default 150; negative: no limit.
	RateLimit int
	// RateWindow is the length of a rate-limit window, aligned to the
	// clock. Default one minute.
	RateWindow time.Duration
	// SlowDelay is how long each answer past 80% of a window's allowance
	// is held back. Default 2s.
	SlowDelay time.Duration
	// Faults are the faults injected from the start; they can be changed
	// at run time through PUT /_sandbox/faults.
	Faults Faults
	// Webhooks configures webhook deliveries; none without a URL.
	Webhooks WebhookConfig
	// Now tells the time. Default time.Now.
	Now func() time.Time
}

// DefaultIntegrations are the integrations a sandbox knows when none are
// configured: one per create-capable vendor and one that cannot create.
var DefaultIntegrations = map[string]string{
	"int_rentmanager_demo":  "rentmanager",
	"int_propertyware_demo": "propertyware_rest",
	"int_buildium_demo":     "buildium",
	"int_yardi_demo":        "yardi",
}

// DefaultProperties are the properties of the default integrations.
var DefaultProperties = map[string]string{
	"prop_100": "int_rentmanager_demo",
	"prop_200": "int_rentmanager_demo",
	"prop_300": "int_rentmanager_demo",
	"prop_900": "int_buildium_demo",
}

// cannotCreate are the vendors whose create answers 405.
var cannotCreate = map[string]bool{"yardi": true, "entrata": true, "propertyware_soap": true}

// perVendorPaths are the vendors with a create path of their own.
var perVendorPaths = map[string]bool{"rentmanager": true, "propertyware_rest": true, "buildium": true}

// Server is the sandbox. Create one with New and serve its Handler.
type Server struct {
	cfg Config

	mu        sync.Mutex
	rng       *mrand.Rand
	jobs      map[string]*job
	pending   jobQueue
	residents map[string]*resident
	order     []string // resident ids in creation order
	stats     Stats
	faults    Faults
	burstLeft int       // 5xx answers still owed by a burst
	window    time.Time // start of the current rate-limit window
	used      int       // requests counted in it
	hooks     *webhooks
	stop      chan struct{}
	done      chan struct{}
}

// Stats are the sandbox's counts, served at GET /_sandbox/stats so that tests
// and benchmarks can see what the API saw.
type Stats struct {
	// Requests counts requests by endpoint name.
	Requests map[string]int `json:"requests"`
	// Unauthorized counts requests answered 401.
	Unauthorized int `json:"unauthorized"`
	// Creates counts accepted creates (write jobs made).
	Creates int `json:"creates"`
	// ResidentsCreated counts residents written by successful jobs.
	ResidentsCreated int `json:"residents_created"`
	// CreatesByIdentity counts accepted creates by integration, email and
	// name, so that a resident sent twice is visible.
	CreatesByIdentity map[string]int `json:"creates_by_identity"`
	// ResidentsByIdentity counts the residents written, by the same key:
	// any value above 1 is a duplicate resident.
	ResidentsByIdentity map[string]int `json:"residents_by_identity"`
	// RateLimited counts answers 429; Slowed, answers held back past 80%.
	RateLimited int `json:"responses_429"`
	Slowed      int `json:"responses_slowed"`
	// Faults counts injected faults by kind (error, drop, slow).
	Faults map[string]int `json:"faults"`
	// Webhooks counts webhook deliveries: sent, failed (non-2xx or no
	// answer), duplicated.
	Webhooks map[string]int `json:"webhooks"`
}

type job struct {
	id        string
	resolveAt time.Time
	status    string // PENDING, SUCCESS, PARTIAL_SUCCESS, FAILURE
	outcome   string // what it turns into
	errors    []string
	body      resident
	recordID  string
	stuck     bool // never resolves
	index     int  // in the pending heap
}

// New returns a sandbox with the given configuration.
func New(cfg Config) *Server {
	if cfg.Latency.kind == "" {
		cfg.Latency, _ = ParseLatency(DefaultLatency)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Integrations == nil {
		cfg.Integrations = DefaultIntegrations
	}
	if cfg.Properties == nil {
		cfg.Properties = DefaultProperties
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 150
	}
	if cfg.RateWindow <= 0 {
		cfg.RateWindow = time.Minute
	}
	if cfg.SlowDelay == 0 {
		cfg.SlowDelay = 2 * time.Second
	}
	s := &Server{
		cfg:       cfg,
		rng:       mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		jobs:      map[string]*job{},
		residents: map[string]*resident{},
		faults:    cfg.Faults,
		stats: Stats{Requests: map[string]int{}, CreatesByIdentity: map[string]int{}, ResidentsByIdentity: map[string]int{},
			Faults: map[string]int{}, Webhooks: map[string]int{}},
	}
	if cfg.Webhooks.URL != "" {
		s.hooks = newWebhooks(s, cfg.Webhooks)
	}
	return s
}

// Start runs what the sandbox does on its own: writes resolve (and their
// webhooks go out) on time even when nobody asks. Close stops it.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	s.stop, s.done = stop, done
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				s.mu.Lock()
				s.resolveDue()
				s.mu.Unlock()
				if s.hooks != nil {
					s.hooks.deliverDue()
				}
			}
		}
	}()
}

// Close stops what Start started.
func (s *Server) Close() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// Stats returns a copy of the sandbox's counts.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Requests = maps.Clone(s.stats.Requests)
	out.CreatesByIdentity = maps.Clone(s.stats.CreatesByIdentity)
	out.ResidentsByIdentity = maps.Clone(s.stats.ResidentsByIdentity)
	out.Faults = maps.Clone(s.stats.Faults)
	out.Webhooks = maps.Clone(s.stats.Webhooks)
	return out
}

// Handler returns the sandbox's HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern, endpoint string, h func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, s.authorized(endpoint, h))
	}
	route("POST /v1/residents/{$}", "create_resident", s.create)
	route("POST /v1/residents/{vendor}/{$}", "create_resident", s.create)
	route("GET /v1/residents/{$}", "list_residents", s.list)
	route("GET /v1/residents/{id}", "get_resident", s.get)
	route("GET /v1/admin/write-status/{job}", "write_status", s.writeStatus)
	route("POST /v1/admin/retry-write/{job}", "retry_write", s.retryWrite)
	route("GET /v1/admin/integrations/{$}", "list_integrations", s.integrations)
	route("GET /v1/properties/{$}", "list_properties", s.properties)
	mux.HandleFunc("GET /_sandbox/stats", s.admin(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	}))
	mux.HandleFunc("GET /_sandbox/faults", s.admin(s.getFaults))
	// What the sandbox holds, outside the rate limit and the faults, so
	// tests can check a client's outcomes against the truth.
	mux.HandleFunc("GET /_sandbox/residents/{id}", s.admin(s.get))
	mux.HandleFunc("GET /_sandbox/write-status/{job}", s.admin(s.writeStatus))
	mux.HandleFunc("PUT /_sandbox/faults", s.admin(s.putFaults))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path), nil)
	})
	return mux
}

// admin guards the sandbox's own endpoints: the same token, but no rate
// limit and no faults, so tests can always read and steer it.
func (s *Server) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.APIKey)) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token", nil)
			return
		}
		h(w, r)
	}
}

func (s *Server) authorized(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		if !ok || s.cfg.APIKey == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.APIKey)) != 1 {
			s.stats.Unauthorized++
			s.mu.Unlock()
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token", nil)
			return
		}
		s.stats.Requests[endpoint]++
		s.resolveDue()
		limited, slow := s.countRequest(w.Header())
		fault := s.drawFault()
		s.mu.Unlock()
		if limited {
			writeError(w, http.StatusTooManyRequests, "rate_limited", "Rate limit exceeded; wait for the window to end", nil)
			return
		}
		if slow > 0 {
			time.Sleep(slow)
		}
		s.serveWithFault(fault, w, r, h)
	}
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	pathVendor := r.PathValue("vendor")
	if pathVendor != "" && cannotCreate[pathVendor] {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", pathVendor+" does not support creating residents", nil)
		return
	}
	if pathVendor != "" && !perVendorPaths[pathVendor] {
		writeError(w, http.StatusNotFound, "not_found", "unknown vendor "+pathVendor, nil)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "cannot read the body", nil)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a JSON object", nil)
		return
	}
	var issues []issue
	if r.URL.Query().Get("ignore_unknown_fields") != "true" {
		var unknown []string
		for k := range fields {
			if !writable[k] {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			issues = append(issues, issue{Code: "unrecognized_keys", Path: []string{k}, Message: "Unrecognized key: " + k})
		}
	}
	var body resident
	if err := json.Unmarshal(raw, &body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "a field has the wrong type: "+err.Error(), nil)
		return
	}
	body.ID, body.CreatedAt, body.UpdatedAt, body.XID, body.IntegrationVendor = nil, nil, nil, nil, nil

	integrationID := str(body.IntegrationID)
	vendor, known := s.cfg.Integrations[integrationID]
	switch {
	case integrationID == "":
		issues = append(issues, issue{Code: "invalid_type", Path: []string{"integration_id"}, Message: "Required"})
	case !known:
		issues = append(issues, issue{Code: "custom", Path: []string{"integration_id"}, Message: "Integration not found"})
	case cannotCreate[vendor]:
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", vendor+" does not support creating residents", nil)
		return
	case pathVendor != "" && pathVendor != vendor:
		issues = append(issues, issue{Code: "custom", Path: []string{"integration_id"}, Message: fmt.Sprintf("Integration is a %s integration, not %s", vendor, pathVendor)})
	}
	issues = append(issues, vendorIssues(vendor, body)...)
	if len(issues) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "Invalid request body", issues)
		return
	}

	s.mu.Lock()
	j := s.newJob(body, vendor)
	s.stats.Creates++
	s.stats.CreatesByIdentity[identity(body)]++
	s.mu.Unlock()

	answer := createAnswer{Meta: createMeta{JobID: j.id}, Result: body}
	writeJSON(w, http.StatusOK, answer)
}

// identity names a resident for the duplicate count.
func identity(b resident) string {
	return strings.ToLower(strings.Join([]string{str(b.IntegrationID), str(b.Email1), str(b.FirstName), str(b.LastName)}, "|"))
}

// newJob makes a write job and decides now how it will end. Callers hold mu.
func (s *Server) newJob(body resident, vendor string) *job {
	now := s.cfg.Now()
	j := &job{
		id:        "job_" + randomHex(12),
		resolveAt: now.Add(s.cfg.Latency.sample(s.rng)),
		status:    "PENDING",
		outcome:   "SUCCESS",
		body:      body,
	}
	draw := s.rng.Float64()
	failureRate := s.cfg.FailureRate
	if s.faults.FailureRate != nil {
		failureRate = *s.faults.FailureRate
	}
	switch {
	case body.PropertyID != nil && s.cfg.Properties[*body.PropertyID] != str(body.IntegrationID) && vendor == "rentmanager":
		j.outcome = "FAILURE"
		j.errors = []string{pmsError(400, fmt.Sprintf("Property %q was not found in Rent Manager", *body.PropertyID))}
	case draw < failureRate:
		j.outcome = "FAILURE"
		j.errors = []string{pmsError(503, "The PMS is undergoing maintenance; try again later")}
	case draw < failureRate+s.cfg.PartialRate:
		j.outcome = "PARTIAL_SUCCESS"
		j.errors = []string{pmsError(422, "The resident was created but their contact preferences could not be saved")}
	case draw < failureRate+s.cfg.PartialRate+s.cfg.StuckRate:
		j.stuck = true
	}
	if j.stuck {
		s.jobs[j.id] = j
		return j
	}
	s.jobs[j.id] = j
	heap.Push(&s.pending, j)
	return j
}

// pmsError renders a PMS message as the stringified JSON real PMS send.
func pmsError(status int, message string) string {
	b, _ := json.Marshal(map[string]any{"StatusCode": status, "Message": message})
	return string(b)
}

// resolveDue ends every write whose latency has passed. Callers hold mu.
func (s *Server) resolveDue() {
	now := s.cfg.Now()
	for s.pending.Len() > 0 && !s.pending[0].resolveAt.After(now) {
		j := heap.Pop(&s.pending).(*job)
		j.status = j.outcome
		if j.outcome == "SUCCESS" || j.outcome == "PARTIAL_SUCCESS" {
			j.recordID = s.store(j.body, j.resolveAt)
		}
		if s.hooks != nil {
			s.hooks.resolved(j)
		}
	}
}

// store writes a resident and returns its id. Callers hold mu.
func (s *Server) store(body resident, at time.Time) string {
	id := "res_" + randomHex(10)
	x := strconv.Itoa(100000 + len(s.order))
	ts := at.UTC().Format(time.RFC3339)
	rec := body
	vendor := s.cfg.Integrations[str(body.IntegrationID)]
	rec.ID, rec.XID, rec.CreatedAt, rec.UpdatedAt, rec.IntegrationVendor = &id, &x, &ts, &ts, &vendor
	s.residents[id] = &rec
	s.order = append(s.order, id)
	s.stats.ResidentsCreated++
	s.stats.ResidentsByIdentity[identity(body)]++
	return id
}

func (s *Server) writeStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	j, ok := s.jobs[r.PathValue("job")]
	if ok && !strings.HasPrefix(r.URL.Path, "/_sandbox/") && s.faults.StatusNotFoundRate > 0 && s.rng.Float64() < s.faults.StatusNotFoundRate {
		s.stats.Faults["status_not_found"]++
		ok = false
	}
	var answer writeStatusAnswer
	if ok {
		answer = writeStatusAnswer{WriteStatus: j.status, Errors: append([]string{}, j.errors...)}
		if j.status == "PENDING" {
			answer.Errors = []string{}
		}
		if j.recordID != "" {
			id := j.recordID
			answer.CreatedRecordID = &id
		}
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Job not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, answer)
}

func (s *Server) retryWrite(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	old, ok := s.jobs[r.PathValue("job")]
	var fresh *job
	if ok && old.status == "FAILURE" {
		body := old.body
		fresh = s.newJob(body, s.cfg.Integrations[str(body.IntegrationID)])
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "Job not found", nil)
	case fresh == nil:
		writeError(w, http.StatusBadRequest, "invalid_request", "Only writes with status FAILURE can be retried", nil)
	default:
		writeJSON(w, http.StatusOK, retryAnswer{Success: true, JobID: fresh.id})
	}
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rec, ok := s.residents[r.PathValue("id")]
	var out resident
	if ok {
		out = *rec
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "Resident not found", nil)
		return
	}
	writeJSON(w, http.StatusOK, oneAnswer{Meta: map[string]any{}, Results: out})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, limit, ok := paging(w, q.Get("offset"), q.Get("limit"))
	if !ok {
		return
	}
	integrationID, email := q.Get("integration_id"), q.Get("email_1")
	first, last := q.Get("first_name"), q.Get("last_name")
	s.mu.Lock()
	var matched []resident
	for _, id := range s.order {
		rec := s.residents[id]
		if integrationID != "" && str(rec.IntegrationID) != integrationID {
			continue
		}
		if email != "" && !strings.EqualFold(str(rec.Email1), email) {
			continue
		}
		if (first != "" && !strings.EqualFold(str(rec.FirstName), first)) || (last != "" && !strings.EqualFold(str(rec.LastName), last)) {
			continue
		}
		matched = append(matched, *rec)
	}
	s.mu.Unlock()
	total := len(matched)
	page := []resident{}
	if offset < total {
		page = matched[offset:min(total, offset+limit)]
	}
	writeJSON(w, http.StatusOK, listAnswer{
		Meta:    listMeta{Offset: offset, Limit: limit, OrderBy: "created_at", HasMore: offset+len(page) < total, Total: total},
		Results: page,
	})
}

func (s *Server) integrations(w http.ResponseWriter, r *http.Request) {
	var out []integration
	for id, vendor := range s.cfg.Integrations {
		out = append(out, integration{ID: id, Vendor: vendor, Active: true, System: "SANDBOX"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, integrationsAnswer{Meta: listMeta{Limit: 100, Total: len(out)}, Results: out})
}

func (s *Server) properties(w http.ResponseWriter, r *http.Request) {
	integrationID := r.URL.Query().Get("integration_id")
	out := []property{}
	for id, owner := range s.cfg.Properties {
		if integrationID == "" || owner == integrationID {
			out = append(out, property{ID: id, IntegrationID: owner, Name: "Sandbox property " + id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, propertiesAnswer{Meta: listMeta{Limit: 100, Total: len(out)}, Results: out})
}

func paging(w http.ResponseWriter, offsetArg, limitArg string) (offset, limit int, ok bool) {
	offset, limit = 0, 100
	var err error
	if offsetArg != "" {
		if offset, err = strconv.Atoi(offsetArg); err != nil || offset < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "offset must be a whole number >= 0", nil)
			return 0, 0, false
		}
	}
	if limitArg != "" {
		if limit, err = strconv.Atoi(limitArg); err != nil || limit < 1 || limit > 250 {
			writeError(w, http.StatusBadRequest, "invalid_request", "limit must be 1 to 250", nil)
			return 0, 0, false
		}
	}
	return offset, limit, true
}

// vendorIssues checks a create body against the rules of its integration's
// vendor and the API's field formats.
func vendorIssues(vendor string, b resident) []issue {
	var issues []issue
	required := func(name string, v *string) {
		if v == nil || strings.TrimSpace(*v) == "" {
			issues = append(issues, issue{Code: "invalid_type", Path: []string{name}, Message: "Required"})
		}
	}
	switch vendor {
	case "rentmanager":
		required("property_id", b.PropertyID)
		required("rent_period", b.RentPeriod)
		required("first_name", b.FirstName)
		required("last_name", b.LastName)
		if b.RentDueDay == nil {
			issues = append(issues, issue{Code: "invalid_type", Path: []string{"rent_due_day"}, Message: "Required"})
		}
	case "propertyware_rest":
		for name, v := range map[string]*string{"first_name": b.FirstName, "last_name": b.LastName, "address_1": b.Address1, "city": b.City, "state": b.State, "zip": b.Zip, "country": b.Country} {
			required(name, v)
		}
		for name, v := range map[string]*string{"first_name": b.FirstName, "last_name": b.LastName} {
			if v != nil && len([]rune(*v)) > 30 {
				issues = append(issues, issue{Code: "too_big", Path: []string{name}, Message: "String must contain at most 30 character(s)"})
			}
		}
	}
	for name, v := range map[string]*string{"email_1": b.Email1, "email_2": b.Email2} {
		if v != nil {
			if addr, err := mail.ParseAddress(*v); err != nil || addr.Address != *v {
				issues = append(issues, issue{Code: "invalid_string", Path: []string{name}, Message: "Invalid email"})
			}
		}
	}
	if b.DateOfBirth != nil {
		if _, err := time.Parse(time.RFC3339, *b.DateOfBirth); err != nil {
			issues = append(issues, issue{Code: "invalid_string", Path: []string{"date_of_birth"}, Message: "Invalid datetime"})
		}
	}
	for name, v := range map[string]*string{"phone_1_type": b.Phone1Type, "phone_2_type": b.Phone2Type} {
		if v != nil && !oneOf(*v, "FAX", "HOME", "MOBILE", "OTHER", "WORK") {
			issues = append(issues, issue{Code: "invalid_enum_value", Path: []string{name}, Message: "Invalid enum value. Expected 'FAX' | 'HOME' | 'MOBILE' | 'OTHER' | 'WORK'"})
		}
	}
	if b.RentPeriod != nil && !oneOf(*b.RentPeriod, "MONTHLY", "WEEKLY", "DAILY") {
		issues = append(issues, issue{Code: "invalid_enum_value", Path: []string{"rent_period"}, Message: "Invalid enum value. Expected 'MONTHLY' | 'WEEKLY' | 'DAILY'"})
	}
	if b.RentDueDay != nil && (*b.RentDueDay < 1 || *b.RentDueDay > 31) {
		issues = append(issues, issue{Code: "too_big", Path: []string{"rent_due_day"}, Message: "Number must be between 1 and 31"})
	}
	sort.Slice(issues, func(i, j int) bool { return issues[i].Path[0] < issues[j].Path[0] })
	return issues
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a client gone away is no error of the sandbox's
}

func writeError(w http.ResponseWriter, status int, code, message string, issues []issue) {
	body := errorBody{Error: errorDetail{Code: code, Message: message}}
	if issues != nil {
		body.Error.Details = &errorDetails{Issues: issues}
	}
	writeJSON(w, status, body)
}

// jobQueue is a min-heap of pending jobs by resolve time.
type jobQueue []*job

func (q jobQueue) Len() int           { return len(q) }
func (q jobQueue) Less(i, j int) bool { return q[i].resolveAt.Before(q[j].resolveAt) }
func (q jobQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *jobQueue) Push(x any) {
	j := x.(*job)
	j.index = len(*q)
	*q = append(*q, j)
}
func (q *jobQueue) Pop() any {
	old := *q
	j := old[len(old)-1]
	*q = old[:len(old)-1]
	return j
}
