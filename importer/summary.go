package importer

import "time"

// Stat names of the counters an import keeps beside its outcomes.
const (
	StatStatusChecks = "status_checks"
	StatRateLimited  = "responses_429"
	StatRetries      = "retries"
	StatThrottled    = "rate_limit_waits"
	StatWebhooks     = "webhooks"
	// StatNotified counts the notifications delivered; StatNotifyFailed,
	// those given up because their target kept failing.
	StatNotified     = "notifications"
	StatNotifyFailed = "notifications_failed"
	// StatPlanned counts a sync's rows by action when it planned them
	// (see StatPlannedAction).
	statPlanned = "planned:"
)

// StatPlannedAction is the counter of a sync's rows planned for action.
func StatPlannedAction(a Action) string { return statPlanned + string(a) }

// StatRequests is the counter of API requests made to an endpoint.
func StatRequests(endpoint string) string { return "requests:" + endpoint }

// StatWritesAnswered counts the writes (creates, updates) the API answered,
// taken or refused; StatRefusedAlike counts those it refused with one
// error (a hash of its code and message).
const StatWritesAnswered = "writes:answered"

// StatRefusedAlike is the counter of the writes refused with one error.
func StatRefusedAlike(errorHash string) string { return "writes:refused:" + errorHash }

// RefusedAlikeLimit is how many of an import's first writes, refused by
// the API all alike (a 400 with one message: a column the vendor requires
// missing from every row), stop the import: the rest would be refused the
// same way, and each would spend the API's budget.
const RefusedAlikeLimit = 20

// RefusedAlike reports whether an import's first writes were all refused
// alike, up to the limit: answered writes so far, and of them refused with
// this one error.
func RefusedAlike(answered, alike int) bool {
	return answered == RefusedAlikeLimit && alike == RefusedAlikeLimit
}

// Summary is the account of a finished (or running) import, as summary.json
// and the command line show it.
type Summary struct {
	ImportID string          `json:"import_id"`
	File     string          `json:"file"`
	Vendor   Vendor          `json:"vendor"`
	Total    int             `json:"total"`
	Counts   map[Outcome]int `json:"counts"`
	// Actions counts the rows of a sync by what it planned to do with
	// them: create, update, none. Empty for a create-only import.
	Actions map[Action]int `json:"actions,omitempty"`
	// Mode is the import's mode (upsert, create-missing, update, create).
	Mode           Mode     `json:"mode,omitempty"`
	UnknownColumns []string `json:"unknown_columns"`
	IgnoredColumns []string `json:"ignored_columns,omitempty"`
	// Mapping names the column mapping the file was read with, and the
	// hash of its content: which mapping wrote what.
	Mapping *MappingUsed `json:"mapping,omitempty"`
	// NotTakenColumns map to fields the vendor's create does not take.
	NotTakenColumns []string       `json:"not_taken_columns,omitempty"`
	Requests        map[string]int `json:"api_requests"`
	RateLimited     int            `json:"responses_429"`
	StatusChecks    int            `json:"status_checks"`
	Retries         int            `json:"retries"`
	RateLimitWaits  int            `json:"rate_limit_waits"`
	Webhooks        int            `json:"webhooks"`
	Stopped         string         `json:"stopped,omitempty"`
	Cancelled       bool           `json:"cancelled,omitempty"`
	StartedAt       time.Time      `json:"started_at"`
	FinishedAt      time.Time      `json:"finished_at,omitzero"`
	Seconds         float64        `json:"duration_seconds"`
}

// NewSummary builds an import's summary from its record, progress and
// counters.
func NewSummary(imp Import, p Progress, stats map[string]int) Summary {
	s := Summary{
		ImportID:        imp.ID,
		File:            imp.File,
		Vendor:          imp.Options.Vendor,
		Total:           p.Total,
		Counts:          make(map[Outcome]int, len(Outcomes)),
		UnknownColumns:  imp.UnknownColumns,
		IgnoredColumns:  imp.IgnoredColumns,
		NotTakenColumns: imp.NotTakenColumns,
		Mapping:         imp.Options.Mapping.Used(),
		Requests:        map[string]int{},
		RateLimited:     stats[StatRateLimited],
		StatusChecks:    stats[StatStatusChecks],
		Retries:         stats[StatRetries],
		RateLimitWaits:  stats[StatThrottled],
		Webhooks:        stats[StatWebhooks],
		Stopped:         imp.Stopped,
		Cancelled:       !imp.CancelledAt.IsZero(),
		StartedAt:       imp.CreatedAt,
		FinishedAt:      imp.FinishedAt,
	}
	if s.UnknownColumns == nil {
		s.UnknownColumns = []string{}
	}
	for _, o := range Outcomes {
		s.Counts[o] = p.Counts[o]
	}
	if imp.Options.Mode.Matches() {
		s.Actions = map[Action]int{}
		for _, a := range []Action{ActionCreate, ActionUpdate, ActionNone} {
			s.Actions[a] = stats[StatPlannedAction(a)]
		}
	}
	s.Mode = imp.Options.Mode
	for _, e := range []string{EndpointCreate, EndpointUpdate, EndpointWriteStatus, EndpointGetResident, EndpointListResidents, EndpointRetryWrite, EndpointCheck} {
		s.Requests[e] = stats[StatRequests(e)]
	}
	end := imp.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	s.Seconds = end.Sub(imp.CreatedAt).Round(time.Millisecond).Seconds()
	return s
}

// AllSucceeded reports whether every row of the import succeeded or had
// nothing to write (unchanged).
func (s Summary) AllSucceeded() bool {
	return s.Total >= 0 && FineRows(s.Counts) == s.Total
}
