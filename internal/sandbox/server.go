// Package sandbox is a local server that behaves like the Propexo write API:
// both create paths with each vendor's rules, 400 and 405 error bodies,
// writes that stay PENDING for a configurable latency and then succeed or
// fail, reading and listing residents, retrying failed writes, and 401 for a
// wrong token. The importer's tests and benchmarks run against it over real
// HTTP, and `importer run` starts one in-process when no API is configured.
package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/apispec"
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
	// CacheLag keeps a written resident out of get and list for a while
	// after its write resolves, per vendor, as Propexo's cache shows a
	// record only once it has read it back from the PMS; a vendor whose
	// lag is importer.UntilSync shows it at the integration's next manual
	// sync (POST /v1/admin/integrations/{id}/manual-sync). Default 0:
	// shown at once, as the create pages of the documented vendors say.
	CacheLag importer.CacheLag
	// MaxJobConcurrency, when above 0, is published as every
	// integration's max_job_concurrency, and each integration runs at
	// most that many write jobs at once: a job beyond them waits in a
	// queue (still PENDING) for a slot, then takes its latency, as
	// Propexo queues writes past an integration's limit. Default 0:
	// none published, jobs run side by side.
	MaxJobConcurrency int
	// StuckRate is the share of writes, 0 to 1, that never leave PENDING.
	// Default 0.
	StuckRate float64
	// RateLimit is how many requests a window allows, all endpoints
	// together. Default 150; negative: no limit.
	RateLimit int
	// RateWindow is the length of a rate-limit window. Default one
	// minute.
	RateWindow time.Duration
	// RateWindowOffset is where the windows start: this long after the
	// clock's RateWindow boundaries (the docs say nothing of where
	// Propexo's start). Default 0: on the clock's minute.
	RateWindowOffset time.Duration
	// SlowDelay is how long each answer past 80% of a window's allowance
	// is held back. Default 2s.
	SlowDelay time.Duration
	// Faults are the faults injected from the start; they can be changed
	// at run time through PUT /_sandbox/faults.
	Faults Faults
	// Webhooks configures webhook deliveries; none without a URL.
	Webhooks WebhookConfig
	// Variants pick, where Propexo's documents leave a behaviour open,
	// which one the sandbox plays.
	Variants Variants
	// OnViolation is told every way a request or an answer departs from
	// the published OpenAPI file (see spec.go). Default: counted in Stats
	// only.
	OnViolation func(apispec.Violation)
	// Now tells the time. Default time.Now.
	Now func() time.Time
}

// DefaultIntegrations are the integrations a sandbox knows when none are
// configured: one per vendor whose rules the sandbox plays, one whose
// rules it does not (rentvine: the generic create's only), and one that
// cannot create.
var DefaultIntegrations = map[string]string{
	"int_rentmanager_demo":  "rentmanager",
	"int_propertyware_demo": "propertyware_rest",
	"int_buildium_demo":     "buildium",
	"int_rentvine_demo":     "rentvine", // no rules modelled: only the generic create's
	"int_yardi_demo":        "yardi",
}

// DefaultProperties are the properties of the default integrations.
var DefaultProperties = map[string]string{
	"prop_100": "int_rentmanager_demo",
	"prop_200": "int_rentmanager_demo",
	"prop_300": "int_rentmanager_demo",
	"prop_900": "int_buildium_demo",
}

// cannotCreate are the vendors whose create answers 405 (propertyware is
// Propertyware SOAP's slug).
var cannotCreate = map[string]bool{"yardi": true, "entrata": true, "propertyware": true}

// perVendorPaths are the vendors with a create path of their own.
var perVendorPaths = map[string]bool{"rentmanager": true, "propertyware_rest": true, "buildium": true}

// Server is the sandbox. Create one with New and serve its Handler.
type Server struct {
	cfg Config

	mu      sync.Mutex
	rng     *mrand.Rand
	jobs    map[string]*job
	pending jobQueue
	// running holds, per integration, when each of its
	// MaxJobConcurrency job slots is free again.
	running map[string][]time.Time
	// unresolved holds, per integration, when each of its jobs not
	// resolved at its last write resolves (for Stats.MostPending).
	unresolved map[string][]time.Time
	residents  map[string]*resident
	order      []string // resident ids in creation order
	// lagging holds, per resident, what get and list show while the
	// cache lags its last write (see Config.CacheLag).
	lagging map[string]lag
	// gone holds the residents taken out of the PMS (Gone): a sync no
	// longer sees them.
	gone      map[string]bool
	stats     Stats
	faults    Faults
	burstLeft int       // 5xx answers still owed by a burst
	window    time.Time // start of the current rate-limit window
	used      int       // requests counted in it
	// createsBefore is stats.Creates when the window started.
	createsBefore int
	hooks         *webhooks
	stop          chan struct{}
	done          chan struct{}
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
	// ManualSyncs counts POST /v1/admin/integrations/{id}/manual-sync.
	ManualSyncs int `json:"manual_syncs"`
	// Updates counts accepted updates (write jobs made); UpdatesApplied,
	// those that succeeded; NoopUpdates, those of them that changed
	// nothing.
	Updates        int `json:"updates"`
	UpdatesApplied int `json:"updates_applied"`
	NoopUpdates    int `json:"noop_updates"`
	// CreatesByIdentity counts accepted creates by integration, email and
	// name, so that a resident sent twice is visible.
	CreatesByIdentity map[string]int `json:"creates_by_identity"`
	// ResidentsByIdentity counts the residents written, by the same key:
	// any value above 1 is a duplicate resident.
	ResidentsByIdentity map[string]int `json:"residents_by_identity"`
	// MostPending is, per integration, the most of its write jobs ever
	// PENDING at once (waiting for a slot included): what a client kept
	// in flight there.
	MostPending map[string]int `json:"most_pending"`
	// RateLimited counts answers 429; Slowed, answers held back past 80%.
	RateLimited int `json:"responses_429"`
	Slowed      int `json:"responses_slowed"`
	// Windows are the rate-limit windows that ended, in order: how much
	// of each allowance a client used.
	Windows []WindowUse `json:"windows,omitempty"`
	// Faults counts injected faults by kind (error, drop, slow).
	Faults map[string]int `json:"faults"`
	// Webhooks counts webhook deliveries: sent, failed (non-2xx or no
	// answer), duplicated.
	Webhooks map[string]int `json:"webhooks"`
	// WebhooksOutstanding counts the deliveries not sent yet (held back
	// by their jitter, waiting for a retry, or being sent): 0 when every
	// event so far has reached its receiver or been given up.
	WebhooksOutstanding int `json:"webhooks_outstanding"`
	// SpecViolations counts the ways requests and answers departed from
	// the published OpenAPI file; Violations says the first few.
	SpecViolations int      `json:"spec_violations"`
	Violations     []string `json:"violations,omitempty"`
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
	cfg.RateWindowOffset %= cfg.RateWindow
	if cfg.RateWindowOffset < 0 {
		cfg.RateWindowOffset += cfg.RateWindow
	}
	if cfg.SlowDelay == 0 {
		cfg.SlowDelay = 2 * time.Second
	}
	cfg.Variants = cfg.Variants.withDefaults()
	s := &Server{
		cfg:       cfg,
		rng:       mrand.New(mrand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		jobs:      map[string]*job{},
		residents: map[string]*resident{},
		lagging:   map[string]lag{},
		gone:      map[string]bool{},
		faults:    cfg.Faults,
		stats: Stats{Requests: map[string]int{}, CreatesByIdentity: map[string]int{}, ResidentsByIdentity: map[string]int{},
			Faults: map[string]int{}, Webhooks: map[string]int{}, MostPending: map[string]int{}},
	}
	s.hooks = newWebhooks(s, cfg.Webhooks)
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
				s.hooks.deliverDue()
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
	out.MostPending = maps.Clone(s.stats.MostPending)
	out.Violations = slices.Clone(s.stats.Violations)
	out.Windows = slices.Clone(s.stats.Windows)
	if s.hooks != nil {
		out.WebhooksOutstanding = s.hooks.outstanding()
	}
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
	route("PUT /v1/residents/{id}", "update_resident", s.update)
	route("PUT /v1/residents/{vendor}/{id}", "update_resident", s.update)
	route("GET /v1/admin/write-status/{job}", "write_status", s.writeStatus)
	route("POST /v1/admin/retry-write/{job}", "retry_write", s.retryWrite)
	route("GET /v1/admin/integrations/{$}", "list_integrations", s.integrations)
	route("GET /v1/properties/{$}", "list_properties", s.properties)
	route("POST /v1/admin/integrations/{id}/manual-sync", "manual_sync", s.manualSync)
	route("GET /v1/webhooks/{$}", "list_webhooks", s.listWebhooks)
	route("POST /v1/webhooks/{$}", "create_webhook", s.createWebhook)
	route("GET /v1/webhooks/{id}", "get_webhook", s.getWebhook)
	route("PUT /v1/webhooks/{id}", "update_webhook", s.updateWebhook)
	route("DELETE /v1/webhooks/{id}", "delete_webhook", s.deleteWebhook)
	mux.HandleFunc("GET /_sandbox/stats", s.admin(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	}))
	mux.HandleFunc("GET /_sandbox/faults", s.admin(s.getFaults))
	// What the sandbox holds, outside the rate limit and the faults, so
	// tests can check a client's outcomes against the truth.
	mux.HandleFunc("GET /_sandbox/residents/{id}", s.admin(s.pmsRecord))
	mux.HandleFunc("POST /_sandbox/residents", s.admin(s.seed))
	mux.HandleFunc("DELETE /_sandbox/residents/{id}", s.admin(s.goneFromPMS))
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
		s.serveWithFault(fault, w, r, s.checked(h))
	}
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
