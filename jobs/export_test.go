package jobs

import (
	"encoding/json"

	"github.com/hibiken/asynq"
)

// NewFeedTaskForTest returns a feed task, for tests that run the handler
// directly.
func NewFeedTaskForTest(p FeedPayload) (*asynq.Task, error) {
	b, err := json.Marshal(p)
	return asynq.NewTask(TypeFeed, b), err
}
