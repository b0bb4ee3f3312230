package store

import (
	"encoding/json"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// storedResult is a row's outcome as the results hash keeps it: the row is
// the hash field, the keys are short and the time is in Unix milliseconds,
// as every row of a big file has one. The Lua scripts read "o" (the
// outcome) and leave "t" (the time) out of comparisons.
type storedResult struct {
	Outcome  importer.Outcome `json:"o"`
	Line     int              `json:"l,omitempty"`
	JobID    string           `json:"j,omitempty"`
	RecordID string           `json:"r,omitempty"`
	Code     string           `json:"c,omitempty"`
	Error    string           `json:"e,omitempty"`
	At       float64          `json:"t,omitempty"` // a Lua script may rewrite it, as a number
}

func encodeResult(r importer.RowResult) ([]byte, error) {
	s := storedResult{Outcome: r.Outcome, Line: r.Line, JobID: r.JobID, RecordID: r.RecordID, Code: r.ErrorCode, Error: r.Error}
	if !r.At.IsZero() {
		s.At = float64(r.At.UnixMilli())
	}
	return json.Marshal(s)
}

// decodeResult fills r (whose Row is set) from a stored result.
func decodeResult(raw string, r *importer.RowResult) error {
	var s storedResult
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return err
	}
	r.Outcome, r.JobID, r.RecordID, r.ErrorCode, r.Error = s.Outcome, s.JobID, s.RecordID, s.Code, s.Error
	if s.Line > 0 {
		r.Line = s.Line
	}
	if s.At > 0 {
		r.At = time.UnixMilli(int64(s.At)).UTC()
	}
	return nil
}
