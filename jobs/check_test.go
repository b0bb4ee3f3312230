package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/poll"
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

// plans is a planner that hands out the plans it is given, in turn, and
// records what it is taught.
type plans struct {
	mu     sync.Mutex
	next   []poll.Plan
	writes []poll.Writes
	taught []string
}

func (p *plans) CheckDelays(_ context.Context, w poll.Writes) poll.Plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writes = append(p.writes, w)
	plan := p.next[0]
	if len(p.next) > 1 {
		p.next = p.next[1:]
	}
	return plan
}

func (p *plans) Observe(_ context.Context, w poll.Writes, n int, frugal, pending bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.taught = append(p.taught, fmt.Sprintf("%s/%s check %d frugal=%v pending=%v", w.IntegrationID, w.Vendor, n, frugal, pending))
}

// A check keeps the plan it was scheduled by: the first, planned frugally
// (the budget scarce), teaches the frugal schedule even though the second
// is planned promptly; the planner hears the integration and its vendor.
func TestACheckTeachesTheScheduleThatPlannedIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:30s", nil)
	planner := &plans{next: []poll.Plan{{First: 3 * time.Second, Second: 10 * time.Second, Frugal: true}, {First: 2 * time.Second, Second: 8 * time.Second}}}
	e.h = jobs.NewImports(e.api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second, PollMax: time.Minute, Planner: planner})
	e.newImport(t, "imp-plan", 1, importer.Options{})
	if err := e.h.ProcessTask(ctx, submitTask(t, "imp-plan", 1)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.store.RowState(ctx, "imp-plan", 1)
	scheduled := func(n int) (*asynq.Task, jobs.CheckPayload) {
		t.Helper()
		info, err := e.insp.GetTaskInfo(jobs.QueueCheck, jobs.CheckTaskID("imp-plan", 1, st.JobID, n))
		if err != nil {
			t.Fatalf("check %d: %v", n, err)
		}
		var p jobs.CheckPayload
		if err := json.Unmarshal(info.Payload, &p); err != nil {
			t.Fatal(err)
		}
		return asynq.NewTask(info.Type, info.Payload), p
	}
	task, p := scheduled(1)
	if !p.Frugal {
		t.Fatalf("the first check's payload does not say it was planned frugally: %+v", p)
	}
	if err := e.h.ProcessTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	if _, p := scheduled(2); p.Frugal {
		t.Errorf("the second check, planned promptly, says frugal: %+v", p)
	}
	want := []string{"int_rentmanager_demo/" + string(importer.VendorGeneric) + " check 1 frugal=true pending=true"}
	planner.mu.Lock()
	defer planner.mu.Unlock()
	if !slices.Equal(planner.taught, want) {
		t.Errorf("the planner was taught %q, want %q", planner.taught, want)
	}
}
