package store

import (
	"testing"

	"github.com/propexo-importer/importer/importer"
)

// A row a retry takes back is stored in the phase the lifecycle's table
// says, and read back in it.
func TestARetryStoresTheTablesPhase(t *testing.T) {
	for _, a := range []importer.RetryAction{importer.Resend, importer.RetryWrite, importer.FollowJob, importer.LookUpThenSend} {
		want, _ := importer.Next(importer.PhaseResolved, importer.ReopenEvent(a))
		v := planState(importer.RetryPlan{Action: a, Result: importer.RowResult{JobID: "job_1"}})
		st := parseState(v)
		if got := st.Phase(); got != want.To {
			t.Errorf("retry action %d: stored %q, read back as %s, want %s", a, v, got, want.To)
		}
		if (a == importer.RetryWrite || a == importer.FollowJob) && st.RetryOf+st.JobID != "job_1" {
			t.Errorf("retry action %d: stored %q without its job", a, v)
		}
	}
}
