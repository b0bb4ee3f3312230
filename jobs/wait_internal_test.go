package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/internal/redistest"
)

// A wait on a task's last attempt runs the task again after the wait:
// Asynq would archive a task that returns any error with its retries
// spent, and a row waiting for the rate limit would be left behind.
func TestAWaitOnTheLastAttemptIsNeverArchived(t *testing.T) {
	t.Parallel()
	rdb := redistest.Client(t)
	queue := asynq.NewClientFromRedisClient(rdb)
	im := NewImports(nil, nil, queue, nil, nil, Config{})
	var runs atomic.Int32
	op := func(ctx context.Context, _ struct{}) error {
		if runs.Add(1) == 1 {
			return &waitError{after: time.Second, err: errors.New("the rate limit is spent")}
		}
		return nil
	}
	mux := asynq.NewServeMux()
	mux.Handle("test:wait", handler("test:wait", op, im.requeue))
	cfg := ServerConfig(1, nil)
	cfg.LogLevel = asynq.FatalLevel
	cfg.Queues = map[string]int{"waits": 1}
	srv := asynq.NewServerFromRedisClient(rdb, cfg)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if _, err := queue.Enqueue(asynq.NewTask("test:wait", []byte("{}")), asynq.Queue("waits"), asynq.MaxRetry(0), asynq.TaskID("w-1")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	for deadline := time.Now().Add(15 * time.Second); runs.Load() < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			archived, _ := insp.ListArchivedTasks("waits")
			t.Fatalf("the task ran %d times and %d are archived: a wait on its last attempt must run it again", runs.Load(), len(archived))
		}
	}
	if archived, _ := insp.ListArchivedTasks("waits"); len(archived) != 0 {
		t.Errorf("%d tasks archived, want none", len(archived))
	}
}
