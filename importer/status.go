package importer

import "time"

// Status is an import as people watch it: where it stands, how far it has
// come, how fast, and how long it has left.
type Status struct {
	ID         string          `json:"import_id"`
	File       string          `json:"file"`
	State      string          `json:"state"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	Total      int             `json:"total"`
	Resolved   int             `json:"resolved"`
	Counts     map[Outcome]int `json:"counts"`
	// NotFine counts the resolved rows whose outcome is not Fine: those
	// to look at.
	NotFine     int     `json:"not_fine"`
	RowsPerMin  float64 `json:"rows_per_minute"`
	SecondsLeft float64 `json:"seconds_left,omitempty"`
	Stopped     string  `json:"stopped,omitempty"`
}

// NewStatus describes an import from its record and progress, as of now.
func NewStatus(imp Import, p Progress, now time.Time) Status {
	s := Status{ID: imp.ID, File: imp.File, State: imp.State(), StartedAt: imp.CreatedAt, FinishedAt: imp.FinishedAt,
		Total: p.Total, Resolved: p.Resolved, Counts: map[Outcome]int{}, Stopped: imp.Stopped}
	for _, o := range Outcomes {
		if n := p.Counts[o]; n > 0 {
			s.Counts[o] = n
		}
		if !o.Fine() {
			s.NotFine += p.Counts[o]
		}
	}
	end := imp.FinishedAt
	if end.IsZero() {
		end = now
	}
	if minutes := end.Sub(imp.CreatedAt).Minutes(); minutes > 0 {
		s.RowsPerMin = float64(p.Resolved) / minutes
	}
	if !imp.Finished() && s.RowsPerMin > 0 && p.Total > p.Resolved {
		s.SecondsLeft = float64(p.Total-p.Resolved) / s.RowsPerMin * 60
	}
	return s
}

// Percent is the share of rows resolved, 0 to 100.
func (s Status) Percent() float64 {
	if s.Total <= 0 {
		return 0
	}
	return 100 * float64(s.Resolved) / float64(s.Total)
}
