package jobs_test

import (
	"testing"
	"time"

	"github.com/propexo-importer/importer/jobs"
)

// Asynq starts a delayed task as its second begins: a check's time is
// rounded up, never down, so it never runs early.
func TestCheckAtRoundsUpToTheSecond(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		now   time.Time
		delay time.Duration
		want  time.Time
	}{
		{base.Add(700 * time.Millisecond), 2 * time.Second, base.Add(3 * time.Second)},
		{base.Add(10 * time.Millisecond), time.Second, base.Add(2 * time.Second)},
		{base, 2 * time.Second, base.Add(2 * time.Second)},
		{base.Add(999 * time.Millisecond), 0, base.Add(time.Second)},
	} {
		if got := jobs.CheckAt(c.now, c.delay); !got.Equal(c.want) {
			t.Errorf("CheckAt(%v, %v) = %v, want %v", c.now.Format("15:04:05.000"), c.delay, got.Format("15:04:05.000"), c.want.Format("15:04:05.000"))
		}
	}
}
