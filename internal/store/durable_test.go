package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/store"
)

// A row's "being sent" mark and its job id reach a replica before the
// create goes out: a failover cannot forget that a resident was created.
// When the replica does not confirm (here it is frozen), the row is left
// to be sent later, and no mark is made that a failover could lose.
func TestMarksWaitForAReplica(t *testing.T) {
	ctx := context.Background()
	h := redistest.StartSentinel(t)
	primary, replica := h.Servers[0].Client(), h.Servers[1].Client()
	h.Replicated(20 * time.Second)
	s := store.New(primary)
	newImport(t, s, "imp-ha")

	if err := sendRow(s, "imp-ha", 1, ""); err != nil {
		t.Fatalf("a move to sending with the replica up: %v", err)
	}
	if v, err := replica.HGet(ctx, "imp:{imp-ha}:state", "1").Result(); err != nil || v != "s" {
		t.Errorf("the replica has row 1 as %q (%v) once its move to sending returned; want s", v, err)
	}
	if _, err := s.Move(ctx, "imp-ha", importer.Move{Row: 1, To: importer.PhaseFollowing, Job: "job-1", Check: 1,
		Stats: []string{importer.StatRequests(importer.EndpointCreate)}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := replica.HGet(ctx, "imp:{imp-ha}:state", "1").Result(); v != "j:1:job-1" {
		t.Errorf("the replica has row 1 as %q once its move to following returned; want its job", v)
	}

	h.Servers[1].Pause()
	moveTo(t, s, "imp-ha", 2, importer.PhaseQueued)
	err := sendRow(s, "imp-ha", 2, "")
	h.Servers[1].Resume()
	if !errors.Is(err, importer.ErrNotReplicated) {
		t.Fatalf("a move to sending with the replica frozen = %v, want ErrNotReplicated", err)
	}
	if v, _ := primary.HGet(ctx, "imp:{imp-ha}:state", "2").Result(); v != "q" {
		t.Errorf("row 2 after a mark no replica confirmed is %q; want it queued (q), not sending", v)
	}
	// A retry-write's mark falls back to the failed job it retries.
	s.Move(ctx, "imp-ha", importer.Move{Row: 3, To: importer.PhaseRetryQueued, Job: "job-old"})
	h.Servers[1].Pause()
	err = sendRow(s, "imp-ha", 3, "job-old")
	h.Servers[1].Resume()
	if st, _ := s.RowState(ctx, "imp-ha", 3); !errors.Is(err, importer.ErrNotReplicated) || st.Sending || st.RetryOf != "job-old" {
		t.Errorf("row 3 (a retry-write) after a mark no replica confirmed: %+v, %v", st, err)
	}
	if err := sendRow(s, "imp-ha", 2, ""); err != nil {
		t.Errorf("a move to sending once the replica is back: %v", err)
	}
}

// Without replicas nothing is waited for.
func TestMarksWithoutReplicas(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-solo")
	if err := sendRow(s, "imp-solo", 1, ""); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.RowState(ctx, "imp-solo", 1); !st.Sending {
		t.Errorf("row 1 = %+v, want sending", st)
	}
}
