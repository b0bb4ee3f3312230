package importer_test

import (
	"testing"

	"github.com/propexo-importer/importer/importer"
)

// A row that ever got a job id, or whose create may have reached the API, is
// never offered for sending again: its resident may exist.
func TestSafeToResend(t *testing.T) {
	tests := []struct {
		name string
		r    importer.RowResult
		want bool
	}{
		{"invalid, never sent", importer.RowResult{Outcome: importer.Invalid, ErrorCode: importer.CodeInvalid}, true},
		{"refused by the API before a job", importer.RowResult{Outcome: importer.Failed, ErrorCode: "invalid_request"}, true},
		{"never reached the API", importer.RowResult{Outcome: importer.Failed, ErrorCode: importer.CodeRetriesSpent}, true},
		{"write FAILURE", importer.RowResult{Outcome: importer.Failed, JobID: "job_1", ErrorCode: importer.CodeWriteFailed}, false},
		{"job not found", importer.RowResult{Outcome: importer.Failed, JobID: "job_1", ErrorCode: importer.CodeJobNotFound}, false},
		{"status unreadable", importer.RowResult{Outcome: importer.Failed, JobID: "job_1", ErrorCode: importer.CodeRetriesSpent}, false},
		{"read back missing", importer.RowResult{Outcome: importer.Failed, JobID: "job_1", RecordID: "res_1", ErrorCode: importer.CodeRecordGone}, false},
		{"in doubt", importer.RowResult{Outcome: importer.Failed, ErrorCode: importer.CodeInDoubt}, false},
		{"internal error", importer.RowResult{Outcome: importer.Failed, ErrorCode: importer.CodeInternal}, false},
		{"succeeded", importer.RowResult{Outcome: importer.Succeeded, JobID: "job_1"}, false},
		{"partial", importer.RowResult{Outcome: importer.Partial, JobID: "job_1"}, false},
		{"timed out", importer.RowResult{Outcome: importer.TimedOut, JobID: "job_1"}, false},
		{"duplicate", importer.RowResult{Outcome: importer.Duplicate}, false},
		{"cancelled", importer.RowResult{Outcome: importer.Cancelled}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.SafeToResend(); got != tt.want {
				t.Errorf("SafeToResend(%+v) = %v, want %v", tt.r, got, tt.want)
			}
		})
	}
}
