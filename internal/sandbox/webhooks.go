package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
)

// WebhookConfig configures the webhooks the sandbox sends:
// WRITE_OPERATION_FAILURE for failed and partial writes, DATA_NEW for
// created residents and DATA_UPDATE for updated ones once the cache shows
// them (what their root_job_id carries is Variants.DataNew's and
// DataUpdate's).
type WebhookConfig struct {
	// URL receives the deliveries. No URL, no webhooks.
	URL string
	// Secret keys the HMAC-SHA256 signature in the propexo-signature
	// header.
	Secret string
	// RetryInterval is the wait before a delivery answered non-2xx is
	// sent again. Default 15m, as the real API.
	RetryInterval time.Duration
	// MaxRetries caps the retries of one delivery. Default 10.
	MaxRetries int
	// DuplicateRate is the share of deliveries, 0 to 1, sent twice.
	DuplicateRate float64
	// Jitter holds each delivery back by a random time up to this long, so
	// deliveries arrive out of order.
	Jitter time.Duration
}

// Signature is the propexo-signature of a body: the lowercase hex
// HMAC-SHA256 of the raw bytes, keyed with the secret.
func Signature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

type webhooks struct {
	s      *Server
	cfg    WebhookConfig
	client *http.Client

	mu      sync.Mutex
	pending []*delivery
	// sending counts the deliveries taken from pending and not yet sent.
	sending int
	// subs are the subscriptions made through /v1/webhooks/, by id.
	subs map[string]*subscription
}

// subscription is a webhook registered through POST /v1/webhooks/.
type subscription struct {
	ID        string
	CreatedAt string
	UpdatedAt string
	URL       string
	Triggers  []string
	Model     string
	Secret    string
	Headers   []webhookHeader
	Active    bool
	// triggerIDs are the ids of its triggers, as the answers give them.
	triggerIDs map[string]string
}

type webhookHeader struct {
	Header string `json:"header"`
	Value  string `json:"value"`
}

// target is where one delivery goes: a URL, its secret and headers.
type target struct {
	url, secret string
	headers     []webhookHeader
}

type delivery struct {
	to      target
	body    []byte
	due     time.Time
	retries int
}

func newWebhooks(s *Server, cfg WebhookConfig) *webhooks {
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 15 * time.Minute
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 10
	}
	return &webhooks{s: s, cfg: cfg, client: &http.Client{Timeout: 10 * time.Second}, subs: map[string]*subscription{}}
}

// listening reports whether an event of trigger has anywhere to go.
func (w *webhooks) listening(trigger string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.targets(trigger)) > 0
}

// targets are where an event goes: the configured URL, and every active
// subscription to the trigger (and, for DATA_NEW, to the residents
// model). Callers hold w.mu.
func (w *webhooks) targets(trigger string) []target {
	var out []target
	if w.cfg.URL != "" {
		out = append(out, target{url: w.cfg.URL, secret: w.cfg.Secret})
	}
	for _, id := range slices.Sorted(maps.Keys(w.subs)) {
		sub := w.subs[id]
		dataEvent := trigger == "DATA_NEW" || trigger == "DATA_UPDATE"
		if sub.Active && slices.Contains(sub.Triggers, trigger) && (!dataEvent || sub.Model == "" || sub.Model == "residents") {
			out = append(out, target{url: sub.URL, secret: sub.Secret, headers: sub.Headers})
		}
	}
	return out
}

type failureEvent struct {
	Trigger string      `json:"trigger"`
	Data    failureData `json:"data"`
}

type failureData struct {
	Event         string   `json:"event"`
	IntegrationID string   `json:"integration_id"`
	Vendor        string   `json:"vendor"`
	RootJobID     string   `json:"root_job_id"`
	WriteStatus   string   `json:"write_status"`
	Errors        []string `json:"errors"`
}

// dataEvent is the flat DATA_NEW (or DATA_UPDATE) delivery, as the
// documented example shows it, with the record's read model in payload.
type dataEvent struct {
	Context       map[string]any `json:"context"`
	Event         string         `json:"event"`
	IntegrationID string         `json:"integration_id"`
	Object        string         `json:"object"`
	RecordID      string         `json:"record_id"`
	RootJobID     string         `json:"root_job_id"`
	JobID         string         `json:"job_id"`
	JobType       string         `json:"job_type"`
	Vendor        string         `json:"vendor"`
	Meta          map[string]any `json:"meta"`
	Payload       readModel      `json:"payload"`
}

// resolved queues the WRITE_OPERATION_FAILURE of a job that just ended in
// FAILURE or PARTIAL_SUCCESS. There is no success event: a created
// resident's DATA_NEW goes out when the cache reads it (dataNew). Callers
// hold s.mu.
func (w *webhooks) resolved(j *job) {
	if j.status != "FAILURE" && j.status != "PARTIAL_SUCCESS" {
		return
	}
	integrationID := str(j.body.IntegrationID)
	b, _ := json.Marshal(failureEvent{Trigger: "WRITE_OPERATION_FAILURE", Data: failureData{
		Event: "WRITE_OPERATION_FAILURE", IntegrationID: integrationID, Vendor: vendorEnum(w.s.cfg.Integrations[integrationID]),
		RootJobID: j.id, WriteStatus: j.status, Errors: j.errors}})
	w.queue("WRITE_OPERATION_FAILURE", b)
}

// dataNew queues the DATA_NEW of a resident the cache has just read, made
// by write job jobID. What root_job_id carries is the DataNew variant's:
// the write's job id, the id of the sync that read the record, or no event
// at all. Callers hold s.mu.
func (w *webhooks) dataNew(jobID, recordID string, rec resident) {
	w.data("DATA_NEW", w.s.cfg.Variants.DataNew, jobID, recordID, rec)
}

// dataUpdate queues the DATA_UPDATE of a resident whose update (by write
// job jobID) the cache has just read: there is no update-success event of
// its own. What root_job_id carries is the DataUpdate variant's. Callers
// hold s.mu.
func (w *webhooks) dataUpdate(jobID, recordID string, rec resident) {
	w.data("DATA_UPDATE", w.s.cfg.Variants.DataUpdate, jobID, recordID, rec)
}

func (w *webhooks) data(event, variant, jobID, recordID string, rec resident) {
	rootJobID := jobID
	switch variant {
	case DataNewNone:
		return
	case DataNewSync:
		rootJobID = "sync_" + randomHex(8)
	}
	integrationID := str(rec.IntegrationID)
	b, _ := json.Marshal(dataEvent{Context: map[string]any{"property_id": rec.PropertyID}, Event: event,
		IntegrationID: integrationID, Object: "residents", RecordID: recordID, RootJobID: rootJobID,
		JobID: "job_" + randomHex(8), JobType: "SYNC", Vendor: vendorEnum(w.s.cfg.Integrations[integrationID]),
		Meta: map[string]any{}, Payload: rec.read()})
	w.queue(event, b)
}

// queue adds a delivery of an event to each of its targets, twice for the
// DuplicateRate's share, each held back by up to Jitter. Callers hold s.mu.
func (w *webhooks) queue(trigger string, body []byte) {
	now := w.s.cfg.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, to := range w.targets(trigger) {
		copies := 1
		if w.cfg.DuplicateRate > 0 && w.s.rng.Float64() < w.cfg.DuplicateRate {
			copies = 2
			w.s.stats.Webhooks["duplicated"]++
		}
		for range copies {
			due := now
			if w.cfg.Jitter > 0 {
				due = due.Add(time.Duration(w.s.rng.Int64N(int64(w.cfg.Jitter))))
			}
			w.pending = append(w.pending, &delivery{to: to, body: body, due: due})
		}
	}
}

// deliverDue sends the deliveries whose time has come, one after another.
func (w *webhooks) deliverDue() {
	now := w.s.cfg.Now()
	w.mu.Lock()
	var due, later []*delivery
	for _, d := range w.pending {
		if d.due.After(now) {
			later = append(later, d)
		} else {
			due = append(due, d)
		}
	}
	w.pending = later
	w.sending += len(due)
	w.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].due.Before(due[j].due) })
	for _, d := range due {
		ok := w.send(d.to, d.body)
		w.s.mu.Lock()
		if ok {
			w.s.stats.Webhooks["sent"]++
		} else {
			w.s.stats.Webhooks["failed"]++
		}
		w.s.mu.Unlock()
		w.mu.Lock()
		w.sending--
		if !ok && d.retries < w.cfg.MaxRetries {
			d.retries++
			d.due = w.s.cfg.Now().Add(w.cfg.RetryInterval)
			w.pending = append(w.pending, d)
		}
		w.mu.Unlock()
	}
}

// outstanding counts the deliveries not sent yet: waiting for their time,
// for a retry, or being sent.
func (w *webhooks) outstanding() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) + w.sending
}

func (w *webhooks) send(to target, body []byte) bool {
	req, err := http.NewRequest(http.MethodPost, to.url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	for _, h := range to.headers {
		req.Header.Set(h.Header, h.Value)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("propexo-signature", Signature(to.secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
