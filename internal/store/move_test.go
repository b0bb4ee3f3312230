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

// resolve records r as its row's outcome, from wherever the row is.
func resolve(t *testing.T, s *store.Store, id string, r importer.RowResult) importer.Moved {
	t.Helper()
	m, err := s.Move(context.Background(), id, importer.Move{Row: r.Row, To: importer.PhaseResolved, Result: r})
	if err != nil {
		t.Fatalf("resolving row %d of %s: %v", r.Row, id, err)
	}
	return m
}

// sendRow marks row as sending (a retry-write of retryOf, when set).
func sendRow(s *store.Store, id string, row int, retryOf string) error {
	m := importer.Move{Row: row, To: importer.PhaseSending}
	if retryOf != "" {
		m.To, m.Job = importer.PhaseSendingRetry, retryOf
	}
	_, err := s.Move(context.Background(), id, m)
	return err
}

// moveTo puts row in phase p, whatever it was in (p not resolved).
func moveTo(t *testing.T, s *store.Store, id string, row int, p importer.Phase) {
	t.Helper()
	m := importer.Move{Row: row, To: p}
	switch p {
	case importer.PhaseRetryQueued, importer.PhaseSendingRetry, importer.PhaseFollowing, importer.PhaseParked:
		m.Job = "job:" + string(p)
	}
	if p == importer.PhaseFollowing {
		m.Check = 3
	}
	if got, err := s.Move(context.Background(), id, m); err != nil || !got.Moved {
		t.Fatalf("moving row %d to %s: %+v, %v", row, p, got, err)
	}
}

// The script reads a row's phase exactly as RowState.Phase does: for every
// phase, a move puts the row there, the Go side reads the same phase back,
// a move from that phase goes and a move from any other is refused, naming
// where the row is.
func TestTheScriptAndGoReadTheSamePhase(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-p")
	for i, p := range importer.Phases {
		if p == importer.PhaseResolved || p == importer.PhaseUnfed {
			continue
		}
		row := i + 1
		moveTo(t, s, "imp-p", row, p)
		st, err := s.RowState(ctx, "imp-p", row)
		if err != nil || st.Phase() != p {
			t.Errorf("a row moved to %s reads back as %s (%+v, %v)", p, st.Phase(), st, err)
		}
		for _, other := range importer.Phases {
			if other == p {
				continue
			}
			got, err := s.Move(ctx, "imp-p", importer.Move{Row: row, From: []importer.Phase{other}, To: importer.PhaseQueued})
			if err != nil || got.Moved || got.Was != p {
				t.Errorf("a move from %s of a row in %s: %+v, %v; want refused, was %s", other, p, got, err, p)
			}
		}
		got, err := s.Move(ctx, "imp-p", importer.Move{Row: row, From: []importer.Phase{p}, To: importer.PhaseQueued})
		if err != nil || !got.Moved || got.Was != p {
			t.Errorf("a move from %s of a row in %s: %+v, %v; want moved", p, p, got, err)
		}
	}
	// An unfed row has no state; a resolved row never moves again.
	if got, _ := s.Move(ctx, "imp-p", importer.Move{Row: 50, From: []importer.Phase{importer.PhaseUnfed}, To: importer.PhaseQueued}); !got.Moved || got.Was != importer.PhaseUnfed {
		t.Errorf("a move from unfed of a new row: %+v", got)
	}
	resolve(t, s, "imp-p", importer.RowResult{Row: 51, Outcome: importer.Succeeded})
	if st, _ := s.RowState(ctx, "imp-p", 51); st.Phase() != importer.PhaseResolved {
		t.Errorf("a resolved row reads as %s", st.Phase())
	}
	if got, _ := s.Move(ctx, "imp-p", importer.Move{Row: 51, To: importer.PhaseQueued}); got.Moved || got.Was != importer.PhaseResolved {
		t.Errorf("a move of a resolved row: %+v; want refused", got)
	}
}

// News of a job checks the job and the check the row is at: news of
// another is stale and changes nothing.
func TestAMoveChecksTheJobAndTheCheck(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-j")
	moveTo(t, s, "imp-j", 1, importer.PhaseFollowing) // job:following, check 3
	following := []importer.Phase{importer.PhaseFollowing}

	got, _ := s.Move(ctx, "imp-j", importer.Move{Row: 1, From: following, FromJob: "job:old", To: importer.PhaseResolved,
		Result: importer.RowResult{Row: 1, Outcome: importer.Failed}})
	if got.Moved || !got.Stale || got.Recorded {
		t.Errorf("news of another job: %+v; want stale, nothing recorded", got)
	}
	got, _ = s.Move(ctx, "imp-j", importer.Move{Row: 1, From: following, FromJob: "job:following", FromCheck: 2, To: importer.PhaseFollowing, Job: "job:following", Check: 3})
	if got.Moved {
		t.Errorf("a check that is not the row's moved it: %+v", got)
	}
	got, _ = s.Move(ctx, "imp-j", importer.Move{Row: 1, From: following, FromJob: "job:following", FromCheck: 3, To: importer.PhaseFollowing, Job: "job:following", Check: 4})
	if st, _ := s.RowState(ctx, "imp-j", 1); !got.Moved || st.Check != 4 {
		t.Errorf("the row's own check did not advance it: %+v, %+v", got, st)
	}
	got, _ = s.Move(ctx, "imp-j", importer.Move{Row: 1, From: following, FromJob: "job:following", To: importer.PhaseResolved,
		Result: importer.RowResult{Row: 1, Outcome: importer.Succeeded}})
	if !got.Moved || !got.Recorded || got.Stale {
		t.Errorf("news of the row's job: %+v; want recorded", got)
	}
}

// A cancel and a send cannot both win: once the import is cancelled no row
// moves to sending, and the move says why.
func TestNoRowOfACancelledImportIsSent(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-c")
	moveTo(t, s, "imp-c", 1, importer.PhaseQueued)
	if _, err := s.Cancel(ctx, "imp-c", time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := s.Move(ctx, "imp-c", importer.Move{Row: 1, To: importer.PhaseSending})
	if err != nil || got.Moved || !got.Cancelled {
		t.Errorf("a move to sending of a cancelled import: %+v, %v; want refused as cancelled", got, err)
	}
	if st, _ := s.RowState(ctx, "imp-c", 1); st.Phase() != importer.PhaseQueued {
		t.Errorf("the refused row is %s, want still queued", st.Phase())
	}
	if _, err := s.Move(ctx, "gone", importer.Move{Row: 1, To: importer.PhaseQueued}); !errors.Is(err, importer.ErrImportNotFound) {
		t.Errorf("a move in an import that does not exist = %v, want ErrImportNotFound", err)
	}
}
