// Package webhook receives Propexo's webhook deliveries: it verifies the
// propexo-signature (the hex HMAC-SHA256 of the raw body, keyed with the
// webhook secret) in constant time, bounds the body, reads the event —
// WRITE_OPERATION_FAILURE and DATA_NEW, keyed off "event" with "trigger" as
// the fallback, flat or nested in "data" — and hands the write's news to the
// importer. Deliveries may repeat and come out of order; what receives the
// news must be idempotent.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/propexo-importer/importer/importer"
)

// MaxBody is the largest delivery accepted, in bytes.
const MaxBody = 1 << 20

// Applier takes a write's news; (*jobs.Imports).ApplyEvent is one.
type Applier func(ctx context.Context, ev importer.WriteEvent) error

// Receiver is the http.Handler of webhook deliveries.
type Receiver struct {
	secret []byte
	apply  Applier
	log    *slog.Logger
}

// NewReceiver returns a receiver that checks deliveries against secret and
// hands their news to apply.
func NewReceiver(secret string, apply Applier, log *slog.Logger) (*Receiver, error) {
	if secret == "" {
		return nil, errors.New("the webhook secret is not set (PROPEXO_WEBHOOK_SECRET)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Receiver{secret: []byte(secret), apply: apply, log: log}, nil
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "webhooks are POSTed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	if !rc.Verify(body, r.Header.Get("propexo-signature")) {
		rc.log.WarnContext(r.Context(), "webhook with a bad signature refused", "remote", r.RemoteAddr)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	ev, ok, err := Parse(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNoContent) // an event the importer does not follow
		return
	}
	if err := rc.apply(r.Context(), ev); err != nil {
		// Not recorded: a non-2xx answer makes the sender try again.
		rc.log.ErrorContext(r.Context(), "cannot apply a webhook", "job_id", ev.JobID, "error", err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	rc.log.DebugContext(r.Context(), "webhook applied", "job_id", ev.JobID, "state", ev.State)
	w.WriteHeader(http.StatusNoContent)
}

// Verify checks a signature over the raw body, in constant time.
func (rc *Receiver) Verify(body []byte, signature string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	mac := hmac.New(sha256.New, rc.secret)
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// envelope holds the fields of both events, flat or under "data".
type envelope struct {
	Event       string          `json:"event"`
	Trigger     string          `json:"trigger"`
	Object      string          `json:"object"`
	RecordID    string          `json:"record_id"`
	RootJobID   string          `json:"root_job_id"`
	JobID       string          `json:"job_id"`
	WriteStatus string          `json:"write_status"`
	Errors      []any           `json:"errors"`
	Data        json.RawMessage `json:"data"`
	// IntegrationID and Payload (DATA_NEW's record) let a DATA_NEW whose
	// root_job_id is not the write's (a sync job's) find its row by the
	// record itself.
	IntegrationID string         `json:"integration_id"`
	Payload       map[string]any `json:"payload"`
}

// Parse reads a delivery. ok is false for an event the importer does not
// follow (SYNC_COMPLETE, DATA_NEW or DATA_UPDATE of other objects...).
func Parse(body []byte) (ev importer.WriteEvent, ok bool, err error) {
	var outer envelope
	if err := json.Unmarshal(body, &outer); err != nil {
		return ev, false, errors.New("the body is not a JSON object")
	}
	e := outer
	if len(outer.Data) > 0 && outer.Data[0] == '{' {
		var inner envelope
		if err := json.Unmarshal(outer.Data, &inner); err == nil {
			e = merge(inner, outer)
		}
	}
	name := e.Event
	if name == "" {
		name = e.Trigger
	}
	jobID := e.RootJobID
	if jobID == "" {
		jobID = e.JobID
	}
	switch strings.ToUpper(name) {
	case "WRITE_OPERATION_FAILURE":
		state := importer.WriteState(strings.ToUpper(e.WriteStatus))
		if state != importer.WritePartialSuccess {
			state = importer.WriteFailure
		}
		ev = importer.WriteEvent{JobID: jobID, State: state, RecordID: e.RecordID, Errors: importer.ReadableErrors(e.Errors)}
	case "DATA_NEW", "DATA_UPDATE":
		if e.Object != "" && e.Object != "residents" {
			return ev, false, nil
		}
		ev = importer.WriteEvent{JobID: jobID, State: importer.WriteSuccess, RecordID: e.RecordID, IntegrationID: e.IntegrationID,
			Updated: strings.EqualFold(name, "DATA_UPDATE")}
		record := payloadFields(e.Payload)
		ev.Email, ev.XID = record[importer.FieldEmail1], record[importer.FieldXID]
		if ev.Updated {
			ev.Payload = record
		}
	default:
		return ev, false, nil
	}
	if jobID == "" {
		return ev, false, errors.New("the event names no root_job_id or job_id")
	}
	return ev, true, nil
}

// payloadFields is a DATA_NEW's or DATA_UPDATE's record by resident field,
// as text.
func payloadFields(p map[string]any) map[string]string {
	out := map[string]string{}
	for _, f := range importer.Fields() {
		switch v := p[f].(type) {
		case string:
			out[f] = v
		case float64:
			out[f] = strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return out
}

// merge fills the fields of inner that are empty from outer.
func merge(inner, outer envelope) envelope {
	pick := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	inner.Event = pick(inner.Event, outer.Event)
	inner.Trigger = pick(inner.Trigger, outer.Trigger)
	inner.Object = pick(inner.Object, outer.Object)
	inner.RecordID = pick(inner.RecordID, outer.RecordID)
	inner.RootJobID = pick(inner.RootJobID, outer.RootJobID)
	inner.JobID = pick(inner.JobID, outer.JobID)
	inner.WriteStatus = pick(inner.WriteStatus, outer.WriteStatus)
	inner.IntegrationID = pick(inner.IntegrationID, outer.IntegrationID)
	if inner.Payload == nil {
		inner.Payload = outer.Payload
	}
	if inner.Errors == nil {
		inner.Errors = outer.Errors
	}
	return inner
}
