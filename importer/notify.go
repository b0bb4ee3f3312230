package importer

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// EventKind names what happened to an import (or to a schedule's firing)
// that people are told about.
type EventKind string

// The events a notification target can be told about.
const (
	// EventSucceeded: the import finished, every row succeeded (or was
	// unchanged).
	EventSucceeded EventKind = "succeeded"
	// EventFailures: the import finished with rows that did not succeed.
	EventFailures EventKind = "failures"
	// EventTimedOut: the import finished with rows whose write was still
	// PENDING at the deadline (and maybe other failures).
	EventTimedOut EventKind = "timed_out"
	// EventStopped: the import stopped sending rows: the API rejected the
	// credentials, or the residents could not be listed.
	EventStopped EventKind = "stopped"
	// EventPlanRefused: a sync's plan wrote more than its guards allow;
	// nothing was written.
	EventPlanRefused EventKind = "plan_refused"
	// EventFileRefused: a scheduled file could not be imported (broken,
	// its columns changed under a strict mapping...): it went to failed/.
	EventFileRefused EventKind = "file_refused"
	// EventNoFile: a schedule that expects a file fired and found none.
	EventNoFile EventKind = "no_file"
)

// EventKinds lists every event, in the order documents show them.
var EventKinds = []EventKind{EventSucceeded, EventFailures, EventTimedOut, EventStopped, EventPlanRefused, EventFileRefused, EventNoFile}

// ParseEvents reads a list of event names ("failures,stopped"); "all" or
// an empty list is every event.
func ParseEvents(names []string) ([]EventKind, error) {
	var out []EventKind
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		switch {
		case n == "":
			continue
		case n == "all":
			return nil, nil
		case !slices.Contains(EventKinds, EventKind(n)):
			return nil, fmt.Errorf("unknown event %q: use %s, or all", n, EventNames())
		case !slices.Contains(out, EventKind(n)):
			out = append(out, EventKind(n))
		}
	}
	return out, nil
}

// EventNames lists every event's name, for messages and help.
func EventNames() string {
	s := make([]string, len(EventKinds))
	for i, k := range EventKinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// NotifyTarget is a place an import's news goes, as imports, schedules and
// task payloads name it: by the id of its address, never by the address,
// which may hold a secret (a Slack webhook URL does). The addresses are kept
// apart, by id (see the notify package).
type NotifyTarget struct {
	ID string `json:"id"`
	// Events are the events the target wants; empty: all.
	Events []EventKind `json:"events,omitempty"`
	// IncludeRows opts in to the first few failed rows of an import (with
	// the residents' names): by default a notification holds counts and
	// error codes only, no personal data.
	IncludeRows bool `json:"include_rows,omitempty"`
}

// Wants reports whether the target is told about events of kind k.
func (t NotifyTarget) Wants(k EventKind) bool {
	return len(t.Events) == 0 || slices.Contains(t.Events, k)
}

// FinishedEvent is the event of an import that finished with these counts:
// timed out rows first, then any other failure, else success.
func FinishedEvent(p Progress) EventKind {
	switch {
	case p.Counts[TimedOut] > 0:
		return EventTimedOut
	case FineRows(p.Counts) < p.Total:
		return EventFailures
	}
	return EventSucceeded
}

// Event is what a notification tells: an event of an import or of a
// schedule's firing, with counts and error codes, and links. It holds no
// personal data unless Rows is filled (a target's IncludeRows).
type Event struct {
	// ID is the event's delivery id: the same for every attempt to deliver
	// it, so that a receiver can drop a repeat.
	ID       string    `json:"id"`
	Kind     EventKind `json:"event"`
	At       time.Time `json:"at"`
	Schedule string    `json:"schedule,omitempty"`
	// File is the name of the file imported (or refused).
	File     string `json:"file,omitempty"`
	ImportID string `json:"import_id,omitempty"`
	// State is the import's state: finished, stopped, cancelled...
	State string `json:"state,omitempty"`
	// Reason says why an import stopped or a file was refused.
	Reason string `json:"reason,omitempty"`
	Mode   Mode   `json:"mode,omitempty"`
	Total  int    `json:"total,omitempty"`
	// Counts holds the rows by outcome (the outcomes with rows only).
	Counts map[Outcome]int `json:"counts,omitempty"`
	// TopErrors are the most frequent error codes of the rows that did not
	// succeed, most frequent first.
	TopErrors []CodeCount `json:"top_errors,omitempty"`
	Seconds   float64     `json:"duration_seconds,omitempty"`
	// Dashboard is the import's page on the dashboard; Report, the folder
	// its report was written to, on the worker that wrote it.
	Dashboard string `json:"dashboard,omitempty"`
	Report    string `json:"report,omitempty"`
	// Rows are the first failed rows, only for a target that opted in.
	Rows []EventRow `json:"rows,omitempty"`
	// Summary is the import's summary.json as it stands (counts, API
	// requests, the mapping's hash...): a webhook receiver's whole account.
	Summary *Summary `json:"summary,omitempty"`
}

// CodeCount is an error code and how many rows ended with it.
type CodeCount struct {
	Code string `json:"code"`
	Rows int    `json:"rows"`
}

// EventRow is a failed row, as a notification that opted in shows it.
type EventRow struct {
	Row       int     `json:"row"`
	Line      int     `json:"line,omitempty"`
	Outcome   Outcome `json:"status"`
	ErrorCode string  `json:"error_code,omitempty"`
	Error     string  `json:"error,omitempty"`
	// Who names the resident (first and last name).
	Who string `json:"who,omitempty"`
}

// Headline is the event in one sentence, as a message's first line and an
// email's subject say it.
func (e Event) Headline() string {
	what := e.File
	if what == "" {
		what = e.ImportID
	}
	if e.Schedule != "" {
		what = e.Schedule + ": " + what
	}
	switch e.Kind {
	case EventSucceeded:
		return fmt.Sprintf("Import %s finished: all %d rows succeeded", what, e.Total)
	case EventFailures:
		return fmt.Sprintf("Import %s finished with failures: %d of %d rows did not succeed", what, e.Total-FineRows(e.Counts), e.Total)
	case EventTimedOut:
		return fmt.Sprintf("Import %s finished with %d rows timed out (still PENDING at the deadline)", what, e.Counts[TimedOut])
	case EventStopped:
		return fmt.Sprintf("Import %s stopped", what)
	case EventPlanRefused:
		return fmt.Sprintf("Import %s refused by its guard: nothing was written", what)
	case EventFileRefused:
		return fmt.Sprintf("Schedule %s refused the file %s", e.Schedule, e.File)
	case EventNoFile:
		return fmt.Sprintf("Schedule %s fired and found no file in its inbox", e.Schedule)
	}
	return fmt.Sprintf("Import %s: %s", what, e.Kind)
}

// Lines are the event's details, one fact a line, as a chat message or an
// email body shows them under the headline.
func (e Event) Lines() []string {
	var out []string
	if e.ImportID != "" {
		out = append(out, "Import: "+e.ImportID+stateSuffix(e.State))
	}
	if e.Reason != "" {
		out = append(out, "Why: "+e.Reason)
	}
	if e.Total > 0 {
		var parts []string
		for _, o := range Outcomes {
			if n := e.Counts[o]; n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, o))
			}
		}
		line := fmt.Sprintf("Rows: %d", e.Total)
		if len(parts) > 0 {
			line += " (" + strings.Join(parts, ", ") + ")"
		}
		if e.Mode != "" {
			line += ", mode " + string(e.Mode)
		}
		out = append(out, line)
	}
	if len(e.TopErrors) > 0 {
		parts := make([]string, len(e.TopErrors))
		for i, c := range e.TopErrors {
			parts[i] = fmt.Sprintf("%s × %d", c.Code, c.Rows)
		}
		out = append(out, "Top errors: "+strings.Join(parts, ", "))
	}
	for _, r := range e.Rows {
		line := fmt.Sprintf("Row %d", r.Row)
		if r.Who != "" {
			line += " (" + r.Who + ")"
		}
		out = append(out, line+": "+string(r.Outcome)+" "+r.ErrorCode+": "+r.Error)
	}
	if e.Seconds > 0 {
		out = append(out, "Took: "+(time.Duration(e.Seconds)*time.Second).String())
	}
	if e.Dashboard != "" {
		out = append(out, "Dashboard: "+e.Dashboard)
	}
	if e.Report != "" {
		out = append(out, "Report: "+e.Report)
	}
	return out
}

func stateSuffix(state string) string {
	if state == "" {
		return ""
	}
	return " (" + state + ")"
}

// FiringOutcome says what a schedule's firing did.
type FiringOutcome string

// The outcomes of a firing. A firing whose import stopped since shows as
// stopped (see ScheduleStatus).
const (
	// FiringImported: it started (or resumed) the import of one or more
	// files.
	FiringImported FiringOutcome = "imported"
	// FiringNoFile: the inbox held no file.
	FiringNoFile FiringOutcome = "no_file"
	// FiringWaiting: the inbox held files not complete yet (still
	// settling, or waiting for their ready marker).
	FiringWaiting FiringOutcome = "waiting"
	// FiringRefused: every file it claimed was refused (filed in
	// failed/).
	FiringRefused FiringOutcome = "refused"
	// FiringAlreadyImported: its files were copies of files imported
	// before; nothing was sent.
	FiringAlreadyImported FiringOutcome = "already_imported"
	// FiringStopped: an import it started has stopped since.
	FiringStopped FiringOutcome = "stopped"
)

// Firing is what a schedule's firing did, as the schedules page and
// 'importer schedule list' show it.
type Firing struct {
	ID      string        `json:"id"`
	At      time.Time     `json:"at"`
	Outcome FiringOutcome `json:"outcome"`
	// Imports are the imports it started or resumed; Refused, the files it
	// filed in failed/ (names only), with Detail saying why.
	Imports []string `json:"imports,omitempty"`
	Refused []string `json:"refused,omitempty"`
	Detail  string   `json:"detail,omitempty"`
}

// ScheduleStatus is a schedule as its page shows it: when it fires next,
// what its last firing did, and the imports it made lately.
type ScheduleStatus struct {
	Name  string `json:"name"`
	Cron  string `json:"cron"`
	Inbox string `json:"inbox"`
	// Next is the next firing; zero when unknown (no scheduler runs it).
	Next    time.Time `json:"next,omitzero"`
	Last    *Firing   `json:"last,omitempty"`
	Imports []string  `json:"imports,omitempty"`
}
