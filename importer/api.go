package importer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// WriteState is the state of a write job.
type WriteState string

// The states of a write job, as GET /v1/admin/write-status answers them.
const (
	WritePending        WriteState = "PENDING"
	WriteSuccess        WriteState = "SUCCESS"
	WritePartialSuccess WriteState = "PARTIAL_SUCCESS"
	WriteFailure        WriteState = "FAILURE"
)

// WriteStatus is what the API says of a write job.
type WriteStatus struct {
	State WriteState
	// Errors are the PMS's messages, made readable.
	Errors []string
	// CreatedRecordID is the new resident's id; it may be empty on SUCCESS
	// for some PMS.
	CreatedRecordID string
}

// ResidentQuery looks residents up: by IntegrationID and Email, or, without
// an email, by IntegrationID, FirstName, LastName and DateOfBirth.
type ResidentQuery struct {
	IntegrationID, Email, FirstName, LastName, DateOfBirth string
}

// QueryFor is the lookup of a resident that may already exist.
func QueryFor(r Resident) ResidentQuery {
	return ResidentQuery{IntegrationID: r.IntegrationID, Email: r.Email1, FirstName: r.FirstName, LastName: r.LastName, DateOfBirth: r.DateOfBirth}
}

// Matches reports whether a record is the resident the query looks for:
// the same names (any case) and, when both have one, the same birth date.
func (q ResidentQuery) Matches(rec ResidentRecord) bool {
	if !strings.EqualFold(rec.FirstName, q.FirstName) || !strings.EqualFold(rec.LastName, q.LastName) {
		return false
	}
	if q.Email != "" && !strings.EqualFold(rec.Email1, q.Email) {
		return false
	}
	if q.DateOfBirth != "" && rec.DateOfBirth != "" && !sameDay(q.DateOfBirth, rec.DateOfBirth) {
		return false
	}
	return true
}

func sameDay(a, b string) bool {
	if len(a) >= 10 && len(b) >= 10 {
		return a[:10] == b[:10]
	}
	return a == b
}

// WriteEvent is what a webhook says of a write job: its final state, the
// created record, the PMS's messages.
type WriteEvent struct {
	JobID    string     `json:"job_id"`
	State    WriteState `json:"state"`
	RecordID string     `json:"record_id,omitempty"`
	Errors   []string   `json:"errors,omitempty"`
	// IntegrationID, Email and XID describe a DATA_NEW's record, so that
	// an event whose root_job_id is not the write's (the documented
	// example's is a sync job's) still finds the write that made it.
	IntegrationID string `json:"integration_id,omitempty"`
	Email         string `json:"email,omitempty"`
	XID           string `json:"x_id,omitempty"`
	// Updated marks a DATA_UPDATE: the record RecordID was read back
	// changed. Payload is its record, by field, so that an event whose
	// root_job_id is not the write's is taken as an update's only when
	// the record holds what the update sent.
	Updated bool              `json:"updated,omitempty"`
	Payload map[string]string `json:"payload,omitempty"`
}

// UpdateKey names the resident an update writes, for a DATA_UPDATE to find
// its write by: the integration and the resident's id.
func UpdateKey(integrationID, recordID string) string {
	if integrationID == "" || recordID == "" {
		return ""
	}
	return integrationID + "|id:" + recordID
}

// Shows reports whether a DATA_UPDATE's record holds the values an update
// sent (fields, as Decision.Fields has them), compared as a sync compares.
// A field no read shows cannot be checked; an update of such fields only
// is never taken as shown.
func (ev WriteEvent) Shows(fields map[string]string) bool {
	checked := 0
	for f, v := range fields {
		if !readableFields[f] {
			continue
		}
		if comparable(f, ev.Payload[f]) != comparable(f, v) {
			return false
		}
		checked++
	}
	return checked > 0
}

// RecordKeys are the keys an event's record is matched by: a DATA_NEW's
// x_id and email, a DATA_UPDATE's id, within its integration.
func (ev WriteEvent) RecordKeys() []string {
	var keys []string
	if ev.IntegrationID == "" {
		return nil
	}
	if ev.Updated {
		if k := UpdateKey(ev.IntegrationID, ev.RecordID); k != "" {
			keys = append(keys, k)
		}
		return keys
	}
	if ev.XID != "" {
		keys = append(keys, RecordKey(ev.IntegrationID, "", ev.XID))
	}
	if ev.Email != "" {
		keys = append(keys, RecordKey(ev.IntegrationID, ev.Email, ""))
	}
	return keys
}

// RecordKey names a resident a create writes, for a DATA_NEW to find its
// write by: the integration and the x_id, else the email (any case). It is
// "" when the resident has neither.
func RecordKey(integrationID, email, xID string) string {
	switch {
	case integrationID == "":
		return ""
	case xID != "":
		return integrationID + "|x:" + xID
	case email != "":
		return integrationID + "|e:" + strings.ToLower(strings.TrimSpace(email))
	}
	return ""
}

// WebhookSubscription is a subscription to Propexo's webhooks
// (/v1/webhooks/). Its secret is never kept, only a hash of it, to tell
// whether it is the receiver's.
type WebhookSubscription struct {
	ID           string    `json:"id"`
	URL          string    `json:"url"`
	Triggers     []string  `json:"triggers"`
	Model        string    `json:"model,omitempty"`
	Active       bool      `json:"active"`
	CreatedAt    time.Time `json:"created_at,omitzero"`
	SecretSHA256 string    `json:"-"`
}

// SecretSHA256 is the hex SHA-256 of a webhook secret: what is kept of it.
func SecretSHA256(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// The webhooks the importer follows: a write that failed (in full or in
// part), a resident created and a resident updated (there is no
// write-success event: the update of a record is seen as DATA_UPDATE once
// Propexo reads it back).
var WebhookTriggers = []string{"WRITE_OPERATION_FAILURE", "DATA_NEW", "DATA_UPDATE"}

// SubscriptionPlan is what registering the receiver at a URL needs, given
// the subscriptions that exist: nothing (ID set, Update false: one is
// active to the URL with the importer's triggers, model and secret), an
// update of one to the URL (its triggers, model or secret differ, or it is
// inactive), or a new one (ID empty).
type SubscriptionPlan struct {
	ID     string
	Update bool
}

// PlanSubscription decides, so that registering twice makes one
// subscription: the oldest to the URL is kept and brought up to date.
func PlanSubscription(subs []WebhookSubscription, url, secret string) SubscriptionPlan {
	var found *WebhookSubscription
	for i := range subs {
		if subs[i].URL == url && (found == nil || subs[i].CreatedAt.Before(found.CreatedAt)) {
			found = &subs[i]
		}
	}
	if found == nil {
		return SubscriptionPlan{}
	}
	have := slices.Sorted(slices.Values(found.Triggers))
	want := slices.Sorted(slices.Values(WebhookTriggers))
	current := found.Active && slices.Equal(have, want) && (found.Model == "" || found.Model == WebhookModel) &&
		subtle.ConstantTimeCompare([]byte(found.SecretSHA256), []byte(SecretSHA256(secret))) == 1
	return SubscriptionPlan{ID: found.ID, Update: !current}
}

// WebhookModel is the model of the DATA_NEW the importer follows.
const WebhookModel = "residents"

// MinWebhookSecret is the shortest webhook secret the API takes.
const MinWebhookSecret = 10

// Endpoints of the write API, as the importer counts its requests.
const (
	EndpointCreate        = "create_resident"
	EndpointUpdate        = "update_resident"
	EndpointWriteStatus   = "write_status"
	EndpointGetResident   = "get_resident"
	EndpointListResidents = "list_residents"
	EndpointRetryWrite    = "retry_write"
	// EndpointCheck counts a command's checks of the API before it starts
	// an import (the key, the integration's vendor, the published limits),
	// whatever endpoint they read.
	EndpointCheck = "api_check"
)

// WriteAPI is what the importer needs of the write API.
type WriteAPI interface {
	// CreateResident submits a create and returns the write's job id.
	CreateResident(ctx context.Context, vendor Vendor, r Resident) (jobID string, err error)
	// WriteStatus reads the state of a write job.
	WriteStatus(ctx context.Context, jobID string) (WriteStatus, error)
	// GetResident reads one resident; a missing one is an *APIError of
	// kind KindNotFound.
	GetResident(ctx context.Context, id string) (ResidentRecord, error)
	// RetryWrite retries a write whose status is FAILURE and returns the
	// new job's id.
	RetryWrite(ctx context.Context, jobID string) (newJobID string, err error)
	// FindResidents lists the residents of an integration that match a
	// query: by email when it has one, else by name (and date of birth).
	FindResidents(ctx context.Context, q ResidentQuery) ([]ResidentRecord, error)
	// UpdateResident submits an update of resident id with fields, by
	// the update's names and in its terms (see Decision.Fields), and
	// returns the write's job id.
	UpdateResident(ctx context.Context, id string, fields map[string]string) (jobID string, err error)
	// ListResidents reads one page of the residents in scope, oldest
	// first, and whether more pages follow.
	ListResidents(ctx context.Context, scope ListScope, offset int) (page []ResidentRecord, more bool, total int, err error)
}

// ListScope is the residents a sync's snapshot lists: an integration's, or
// one property's of it; with XID (and XPropertyID, which the API needs
// beside it) or Email, only those the filter finds.
type ListScope struct {
	IntegrationID string `json:"integration_id"`
	PropertyID    string `json:"property_id,omitempty"`
	XID           string `json:"x_id,omitempty"`
	XPropertyID   string `json:"x_property_id,omitempty"`
	Email         string `json:"email_1,omitempty"`
}

// ListPageSize is how many residents a listing asks for a page: the API's
// most.
const ListPageSize = 250

// ErrorKind classifies a failed API request by what the importer must do.
type ErrorKind int

// The kinds of API errors.
const (
	// KindUnavailable: a 5xx answer, a network error or a timeout. Retry
	// with backoff; the row fails only once the retry budget is spent.
	KindUnavailable ErrorKind = iota
	// KindRejected: 400 or 405. The row fails at once with the API's code
	// and message; sending it again cannot help.
	KindRejected
	// KindUnauthorized: 401 or 403. The credentials are wrong for every
	// row: the whole import stops.
	KindUnauthorized
	// KindRateLimited: 429. Wait for the window to pass; not a failure.
	KindRateLimited
	// KindNotFound: 404 for a job or a record.
	KindNotFound
)

func (k ErrorKind) String() string {
	switch k {
	case KindRejected:
		return "rejected"
	case KindUnauthorized:
		return "unauthorized"
	case KindRateLimited:
		return "rate_limited"
	case KindNotFound:
		return "not_found"
	default:
		return "unavailable"
	}
}

// APIError is a failed request to the write API. Its text never holds
// credentials.
type APIError struct {
	Kind ErrorKind
	// Op names the request, e.g. "POST /v1/residents/".
	Op string
	// Status is the HTTP status, or 0 when no answer came.
	Status int
	// Code and Message are the API's error code and message, when it sent
	// an error body.
	Code    string
	Message string
	// RetryAfter is how long the server asked to wait, when it said.
	RetryAfter time.Duration
	// MaybeSent is true when the request may have reached the API although
	// no answer came back (a timeout or a dropped connection after the
	// request was written). A create that ends so must not be sent again
	// blindly: the API has no idempotency key.
	MaybeSent bool
	// Err is the underlying error, for a request that got no answer.
	Err error
}

func (e *APIError) Error() string {
	switch {
	case e.Status == 0 && e.Err != nil:
		return fmt.Sprintf("%s: %v", e.Op, e.Err)
	case e.Code != "" || e.Message != "":
		return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, e.Code, e.Message)
	default:
		return fmt.Sprintf("%s: HTTP %d", e.Op, e.Status)
	}
}

func (e *APIError) Unwrap() error { return e.Err }

// ErrorKindOf returns the kind of an API error, and false for any other
// error.
func ErrorKindOf(err error) (ErrorKind, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Kind, true
	}
	return 0, false
}

// requestTally counts the requests an API call sends.
type requestTally struct{ n atomic.Int64 }

type requestTallyKey struct{}

// WithRequestTally returns a context whose API calls count the requests
// they send (TallyRequest), and the count so far: a look-up may send
// several (pages, an email as written and in lower case), and each is
// one of the import's requests.
func WithRequestTally(ctx context.Context) (context.Context, func() int) {
	t := &requestTally{}
	return context.WithValue(ctx, requestTallyKey{}, t), func() int { return int(t.n.Load()) }
}

// TallyRequest counts one request sent under ctx, when ctx tallies them
// (an API client calls it for each request it sends).
func TallyRequest(ctx context.Context) {
	if t, ok := ctx.Value(requestTallyKey{}).(*requestTally); ok {
		t.n.Add(1)
	}
}
