package jobs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// waitError asks Asynq to run the task again later without counting a
// failure: the API asked us to slow down, nothing went wrong.
type waitError struct {
	after time.Duration
	err   error
}

func (e *waitError) Error() string { return fmt.Sprintf("waiting %v: %v", e.after, e.err) }
func (e *waitError) Unwrap() error { return e.err }

// IsFailure tells Asynq which errors spend the retry budget: all but the
// waits for a rate limit.
func IsFailure(err error) bool {
	var w *waitError
	return !errors.As(err, &w)
}

// RetryDelay is the delay before a task runs again: what a wait asked for,
// else an exponential backoff from 2s to 5m with jitter.
func RetryDelay(n int, err error, task *asynq.Task) time.Duration {
	var w *waitError
	if errors.As(err, &w) {
		return w.after
	}
	d := 2 * time.Second << min(n, 8)
	d = min(d, 5*time.Minute)
	return d/2 + rand.N(d/2+1)
}

// rateLimitWait is how long to wait after a 429 when the API did not say
// (no Retry-After): 20 to 30 seconds, jittered so that the waiting tasks do
// not all come back at once; the shared pause of the rate limiter usually
// holds them longer anyway.
func rateLimitWait(err error) time.Duration {
	var apiErr *importer.APIError
	if errors.As(err, &apiErr) && apiErr.RetryAfter > 0 {
		return apiErr.RetryAfter
	}
	return 20*time.Second + rand.N(10*time.Second)
}

// lastAttempt reports whether the running task has no retry left.
func lastAttempt(ctx context.Context) bool {
	retried, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && retried >= max
}
