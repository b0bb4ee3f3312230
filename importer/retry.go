package importer

// RetryAction is what 'importer retry' does with a row that failed for a
// reason worth another try.
type RetryAction int

// The retry actions.
const (
	// Resend sends the create again: it certainly never reached the API.
	Resend RetryAction = iota
	// RetryWrite retries the failed write through the API's retry-write.
	RetryWrite
	// FollowJob reads the status of the row's write job again.
	FollowJob
	// LookUpThenSend looks the row's resident up, adopts it when found
	// and sends the create when not: for a row whose create may have
	// reached the API.
	LookUpThenSend
)

// RetryPlan is a row to try again: its failed result and what to do.
type RetryPlan struct {
	Result RowResult
	Action RetryAction
}
