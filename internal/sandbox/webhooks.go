package sandbox

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// WebhookConfig configures the webhooks the sandbox sends when writes
// resolve: WRITE_OPERATION_FAILURE for failed and partial writes, DATA_NEW
// (carrying the write's job id in root_job_id) for created residents.
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
}

type delivery struct {
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
	return &webhooks{s: s, cfg: cfg, client: &http.Client{Timeout: 10 * time.Second}}
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

type dataNewEvent struct {
	Event         string   `json:"event"`
	IntegrationID string   `json:"integration_id"`
	Object        string   `json:"object"`
	RecordID      string   `json:"record_id"`
	RootJobID     string   `json:"root_job_id"`
	JobID         string   `json:"job_id"`
	Vendor        string   `json:"vendor"`
	Payload       resident `json:"payload"`
}

// resolved queues the webhooks of a job that just resolved. Callers hold
// s.mu.
func (w *webhooks) resolved(j *job) {
	integrationID := str(j.body.IntegrationID)
	vendor := vendorEnum(w.s.cfg.Integrations[integrationID])
	var events [][]byte
	if j.status == "FAILURE" || j.status == "PARTIAL_SUCCESS" {
		b, _ := json.Marshal(failureEvent{Trigger: "WRITE_OPERATION_FAILURE", Data: failureData{
			Event: "WRITE_OPERATION_FAILURE", IntegrationID: integrationID, Vendor: vendor,
			RootJobID: j.id, WriteStatus: j.status, Errors: j.errors}})
		events = append(events, b)
	}
	if j.recordID != "" {
		rec := *w.s.residents[j.recordID]
		b, _ := json.Marshal(dataNewEvent{Event: "DATA_NEW", IntegrationID: integrationID, Object: "residents",
			RecordID: j.recordID, RootJobID: j.id, JobID: "sync_" + randomHex(8), Vendor: vendor, Payload: rec})
		events = append(events, b)
	}
	now := w.s.cfg.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, body := range events {
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
			w.pending = append(w.pending, &delivery{body: body, due: due})
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
	w.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].due.Before(due[j].due) })
	for _, d := range due {
		ok := w.send(d.body)
		w.s.mu.Lock()
		if ok {
			w.s.stats.Webhooks["sent"]++
		} else {
			w.s.stats.Webhooks["failed"]++
		}
		w.s.mu.Unlock()
		if !ok && d.retries < w.cfg.MaxRetries {
			d.retries++
			d.due = w.s.cfg.Now().Add(w.cfg.RetryInterval)
			w.mu.Lock()
			w.pending = append(w.pending, d)
			w.mu.Unlock()
		}
	}
}

func (w *webhooks) send(body []byte) bool {
	req, err := http.NewRequest(http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("propexo-signature", Signature(w.cfg.Secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}
