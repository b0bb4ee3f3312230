package store_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/store"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func newImport(t *testing.T, s *store.Store, id string) importer.Import {
	t.Helper()
	imp, created, err := s.CreateImport(context.Background(), importer.Import{ID: id, File: "f.csv", CreatedAt: time.Now().UTC(), Total: -1,
		Options: importer.Options{Vendor: importer.VendorGeneric, Deadline: time.Hour}})
	if err != nil || !created {
		t.Fatalf("CreateImport = %v, created %v", err, created)
	}
	return imp
}

func TestCreateImportIsOncePerID(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	first := newImport(t, s, "imp-a")
	again, created, err := s.CreateImport(ctx, importer.Import{ID: "imp-a", File: "other.csv", CreatedAt: time.Now().Add(time.Hour)})
	if err != nil || created || again.File != "f.csv" || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("second CreateImport = %+v, created %v, %v; want the first one back", again, created, err)
	}
	if _, err := s.Import(ctx, "nope"); !errors.Is(err, importer.ErrImportNotFound) {
		t.Errorf("Import(unknown) error = %v", err)
	}
}

// Resolving is once per row and counted in the same step, however many
// workers resolve the same rows at once; "done" waits for the total.
func TestResolveIsAtomicAndIdempotent(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-r")
	const rows = 200
	var done atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for row := 1; row <= rows; row++ {
				outcome := importer.Succeeded
				if row%10 == 0 {
					outcome = importer.Failed
				}
				// Each worker claims a different outcome for row 1:
				// only the first recorded counts.
				if row == 1 && w%2 == 1 {
					outcome = importer.Partial
				}
				res, err := s.Move(ctx, "imp-r", importer.Move{Row: row, To: importer.PhaseResolved, Result: importer.RowResult{Row: row, Outcome: outcome}})
				if err != nil {
					t.Error(err)
					return
				}
				if res.Done {
					done.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	if done.Load() != 0 {
		t.Error("done was reported before the total was known")
	}
	p, _ := s.Progress(ctx, "imp-r")
	sum := 0
	for _, n := range p.Counts {
		sum += n
	}
	if p.Resolved != rows || sum != rows || p.Counts[importer.Failed] != rows/10 {
		t.Errorf("progress = %+v, want %d resolved once each", p, rows)
	}
	if d, _ := s.SetTotal(ctx, "imp-r", rows+1, importer.FileColumns{Names: []string{"a"}}); d {
		t.Error("SetTotal reported done with one row unresolved")
	}
	res := resolve(t, s, "imp-r", importer.RowResult{Row: rows + 1, Outcome: importer.Invalid})
	if !res.Done || !res.Recorded {
		t.Error("resolving the last row did not report it recorded and done")
	}
	if res := resolve(t, s, "imp-r", importer.RowResult{Row: rows + 1, Outcome: importer.Invalid}); !res.Done || res.Recorded {
		t.Error("a redelivered last resolve must report done again, so a lost finalize is re-enqueued")
	}
}

func TestRowStateTransitions(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-s")
	st, _ := s.RowState(ctx, "imp-s", 3)
	if st != (importer.RowState{}) {
		t.Errorf("a new row's state = %+v", st)
	}
	sendRow(s, "imp-s", 3, "")
	if st, _ = s.RowState(ctx, "imp-s", 3); !st.Sending {
		t.Errorf("after a move to sending: %+v", st)
	}
	s.Move(ctx, "imp-s", importer.Move{Row: 3, From: []importer.Phase{importer.PhaseSending}, To: importer.PhaseQueued})
	if st, _ = s.RowState(ctx, "imp-s", 3); st.Sending {
		t.Errorf("after a move back to queued: %+v", st)
	}
	s.Move(ctx, "imp-s", importer.Move{Row: 3, To: importer.PhaseFollowing, Job: "job:with:colons", Check: 1, ForWebhooks: true})
	if st, _ = s.RowState(ctx, "imp-s", 3); st.JobID != "job:with:colons" || st.Check != 1 {
		t.Errorf("after a move to following: %+v", st)
	}
	advance := func(from, to int) bool {
		m, _ := s.Move(ctx, "imp-s", importer.Move{Row: 3, From: []importer.Phase{importer.PhaseFollowing}, FromJob: "job:with:colons", FromCheck: from,
			To: importer.PhaseFollowing, Job: "job:with:colons", Check: to})
		return m.Moved
	}
	if advance(2, 3) {
		t.Error("a check advanced from a number the row is not at")
	}
	if !advance(1, 2) {
		t.Error("check 1→2 refused")
	}
	if st, _ = s.RowState(ctx, "imp-s", 3); st.Check != 2 || st.JobID != "job:with:colons" {
		t.Errorf("after a check advanced: %+v", st)
	}
	s.Stop(ctx, "imp-s", "first reason")
	s.Stop(ctx, "imp-s", "second reason")
	if st, _ = s.RowState(ctx, "imp-s", 3); st.Stopped != "first reason" {
		t.Errorf("stopped = %q, want the first reason kept", st.Stopped)
	}
	resolve(t, s, "imp-s", importer.RowResult{Row: 3, Outcome: importer.Succeeded})
	states, _ := s.RowStates(ctx, "imp-s", []int{3, 4})
	if !states[0].Resolved || states[0].JobID != "" || states[1].Resolved {
		t.Errorf("RowStates = %+v; a resolved row drops its working state", states)
	}
}

func TestRowsInInputOrder(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-o")
	const total = 1203 // more than one batch
	var rows []importer.Row
	var results []importer.RowResult
	for n := total; n >= 1; n-- {
		rows = append(rows, importer.Row{Number: n, Columns: []importer.Column{{Name: "n", Value: "v"}}})
		if n%2 == 0 {
			results = append(results, importer.RowResult{Row: n, Outcome: importer.Invalid})
		}
	}
	header, err := s.InputHeader(ctx, "imp-o", []string{"n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveInput(ctx, "imp-o", header, rows, results); err != nil {
		t.Fatal(err)
	}
	next := 1
	for r, err := range s.Rows(ctx, "imp-o", total) {
		if err != nil {
			t.Fatal(err)
		}
		if r.Result.Row != next || len(r.Columns) != 1 {
			t.Fatalf("row %d came as %+v", next, r)
		}
		if want := next%2 == 0; (r.Result.Outcome == importer.Invalid) != want {
			t.Fatalf("row %d outcome %q", next, r.Result.Outcome)
		}
		next++
	}
	if next != total+1 {
		t.Errorf("Rows yielded %d rows, want %d", next-1, total)
	}
}

func TestReplaceKeepsWhatItIsNotGiven(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-x")
	s.SetTotal(ctx, "imp-x", 1, importer.FileColumns{})
	resolve(t, s, "imp-x", importer.RowResult{Row: 1, Outcome: importer.Succeeded, JobID: "j", RecordID: "res_1"})
	s.Finish(ctx, "imp-x", time.Now())
	changed, reopened, err := s.Replace(ctx, "imp-x", importer.RowResult{Row: 1, Outcome: importer.Partial, ErrorCode: "partial_success", Error: "half"}, importer.Succeeded)
	if err != nil || !changed || !reopened {
		t.Fatalf("Replace = %v %v %v", changed, reopened, err)
	}
	for r := range s.Rows(ctx, "imp-x", 1) {
		if r.Result.Outcome != importer.Partial || r.Result.RecordID != "res_1" || r.Result.JobID != "j" || r.Result.Error != "half" {
			t.Errorf("after Replace: %+v", r.Result)
		}
	}
	p, _ := s.Progress(ctx, "imp-x")
	if p.Counts[importer.Succeeded] != 0 || p.Counts[importer.Partial] != 1 || p.Resolved != 1 {
		t.Errorf("counts = %+v", p)
	}
	imp, _ := s.Import(ctx, "imp-x")
	if imp.Finished() || imp.Round != 1 {
		t.Errorf("import after a reopening Replace: finished %v round %d", imp.Finished(), imp.Round)
	}
	if changed, _, _ := s.Replace(ctx, "imp-x", importer.RowResult{Row: 1, Outcome: importer.Failed}, importer.Succeeded); changed {
		t.Error("Replace changed a row that is not in the outcome it names")
	}
	if changed, _, _ := s.Replace(ctx, "imp-x", importer.RowResult{Row: 1, Outcome: importer.Partial}, importer.Partial); changed {
		t.Error("a Replace that adds nothing counted as a change")
	}
}

// Once the report is written, the rows expire after the retention; the
// import's record and counts stay. Reopening keeps the rows again.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := store.New(rdb)
	s.CreateImport(ctx, importer.Import{ID: "imp-ret", CreatedAt: time.Now().UTC(), Total: -1, Retention: time.Hour,
		Options: importer.Options{Vendor: importer.VendorGeneric, Deadline: time.Hour}})
	s.SaveInput(ctx, "imp-ret", nil, []importer.Row{{Number: 1, Columns: []importer.Column{{Name: "E-mail", Value: "ada@example.com"}}}},
		[]importer.RowResult{{Row: 1, Outcome: importer.Invalid}})
	s.SetTotal(ctx, "imp-ret", 1, importer.FileColumns{Names: []string{"E-mail"}})
	if err := s.Finish(ctx, "imp-ret", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"imp:{imp-ret}:input", "imp:{imp-ret}:results"} {
		if ttl := rdb.TTL(ctx, key).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
			t.Errorf("%s expires in %v, want the hour of retention", key, ttl)
		}
	}
	if ttl := rdb.TTL(ctx, "imp:{imp-ret}:meta").Val(); ttl != -1 {
		t.Errorf("the import's record expires (%v): status must keep it", ttl)
	}
	imp, _ := s.Import(ctx, "imp-ret")
	if imp.ExpiresAt.IsZero() || time.Until(imp.ExpiresAt) > time.Hour {
		t.Errorf("ExpiresAt = %v", imp.ExpiresAt)
	}
	s.Reopen(ctx, "imp-ret", nil)
	if ttl := rdb.TTL(ctx, "imp:{imp-ret}:input").Val(); ttl != -1 {
		t.Errorf("a reopened import's rows still expire in %v", ttl)
	}
}

func TestFeedKeepsTheWindow(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	newImport(t, s, "imp-f")
	header, _ := s.InputHeader(ctx, "imp-f", []string{"a"})
	var rows []importer.Row
	for n := 1; n <= 10; n++ {
		rows = append(rows, importer.Row{Number: n, Line: n + 1, Columns: []importer.Column{{Name: "a", Value: "v"}}})
	}
	// Row 3 is invalid: resolved at the split, never fed.
	if err := s.SaveInput(ctx, "imp-f", header, rows, []importer.RowResult{{Row: 3, Outcome: importer.Invalid}}); err != nil {
		t.Fatal(err)
	}
	s.SetTotal(ctx, "imp-f", 10, importer.FileColumns{Names: header})
	gen, err := s.StartFeed(ctx, "imp-f")
	if err != nil {
		t.Fatal(err)
	}
	next, fed, _, queued, err := s.FeedBatch(ctx, "imp-f", gen, 1, 10, 4, -1)
	if err != nil {
		t.Fatal(err)
	}
	if next != 6 || !slices.Equal(fed, []int{1, 2, 4, 5}) || queued != 4 {
		t.Fatalf("first batch: next %d, rows %v, %d queued; want 6, [1 2 4 5], 4", next, fed, queued)
	}
	// Nothing landed: no room.
	if next, fed, _, _, _ = s.FeedBatch(ctx, "imp-f", gen, 6, 10, 4, -1); next != 6 || len(fed) != 0 {
		t.Fatalf("full window: next %d, rows %v", next, fed)
	}
	// Two rows resolve (one sent, one not): two places free.
	sendRow(s, "imp-f", 1, "")
	resolve(t, s, "imp-f", importer.RowResult{Row: 1, Outcome: importer.Succeeded})
	resolve(t, s, "imp-f", importer.RowResult{Row: 2, Outcome: importer.Failed})
	resolve(t, s, "imp-f", importer.RowResult{Row: 2, Outcome: importer.Failed}) // twice: counted once
	if fs, _ := s.Feed(ctx, "imp-f"); fs.InFlight() != 2 || fs.Fed != 4 || fs.Landed != 2 {
		t.Fatalf("feed state %+v, want 2 in flight", fs)
	}
	// A quota of one queues one of the two places.
	if next, fed, _, queued, _ = s.FeedBatch(ctx, "imp-f", gen, 6, 10, 4, 1); next != 7 || !slices.Equal(fed, []int{6}) || queued != 1 {
		t.Fatalf("a quota of 1: next %d, rows %v, %d queued; want 7, [6], 1", next, fed, queued)
	}
	if next, fed, _, _, _ = s.FeedBatch(ctx, "imp-f", gen, 7, 10, 4, -1); next != 8 || !slices.Equal(fed, []int{7}) {
		t.Fatalf("after two landed: next %d, rows %v; want 8, [7]", next, fed)
	}
	// A new split supersedes this feed; the new generation passes the rows
	// in flight again (to queue them again) without counting them twice.
	gen2, _ := s.StartFeed(ctx, "imp-f")
	if _, _, _, _, err := s.FeedBatch(ctx, "imp-f", gen, 8, 10, 4, -1); !errors.Is(err, importer.ErrFeedSuperseded) {
		t.Errorf("old generation's batch: %v, want importer.ErrFeedSuperseded", err)
	}
	if err := s.AdvanceCursor(ctx, "imp-f", gen, 9); !errors.Is(err, importer.ErrFeedSuperseded) {
		t.Errorf("old generation's cursor: %v, want importer.ErrFeedSuperseded", err)
	}
	next, fed, _, queued, _ = s.FeedBatch(ctx, "imp-f", gen2, 1, 10, 4, 0)
	if next != 8 || !slices.Equal(fed, []int{4, 5, 6, 7}) || queued != 0 {
		t.Fatalf("new generation: next %d, rows %v; want 8, [4 5 6 7]", next, fed)
	}
	if fs, _ := s.Feed(ctx, "imp-f"); fs.InFlight() != 4 {
		t.Errorf("in flight %d after the second generation, want 4", fs.InFlight())
	}
	if err := s.AdvanceCursor(ctx, "imp-f", gen2, 8); err != nil {
		t.Fatal(err)
	}
	s.AdvanceCursor(ctx, "imp-f", gen2, 5) // never backwards
	if fs, _ := s.Feed(ctx, "imp-f"); fs.Cursor != 8 || fs.Gen != gen2 || fs.Total != 10 {
		t.Errorf("feed state %+v, want cursor 8 of generation %d", fs, gen2)
	}
	// A full window pauses the feed; the resolve that brings the rows in
	// flight down to the wake mark wakes it, once.
	if err := s.PauseFeed(ctx, "imp-f", gen2, 7, 2); err != nil {
		t.Fatal(err)
	}
	if res := resolve(t, s, "imp-f", importer.RowResult{Row: 4, Outcome: importer.Succeeded}); res.WakeSeq != 0 {
		t.Errorf("woken with 3 rows in flight and a wake mark of 2: %+v", res)
	}
	if res := resolve(t, s, "imp-f", importer.RowResult{Row: 5, Outcome: importer.Succeeded}); res.WakeGen != gen2 || res.WakeSeq != 7 {
		t.Errorf("not woken at the mark: %+v", res)
	}
	if res := resolve(t, s, "imp-f", importer.RowResult{Row: 6, Outcome: importer.Succeeded}); res.WakeSeq != 0 {
		t.Errorf("woken twice: %+v", res)
	}
	in, err := s.Inputs(ctx, "imp-f", []int{4, 99})
	if err != nil || in[0].Line != 5 || len(in[0].Columns) != 1 || in[0].Columns[0].Name != "a" || in[1].Columns != nil {
		t.Errorf("Inputs = %+v, %v", in, err)
	}
}

// The imports feeding rows share the budget by weight: Activate sums the
// weights of those seen lately and forgets the others; Queued counts an
// import's rows waiting for their submit.
func TestSharesAndQueuedRows(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	now := time.Now()
	if total, err := s.Activate(ctx, "imp-a", 4, now.Add(-time.Minute)); err != nil || total != 4 {
		t.Fatalf("Activate a = %d, %v", total, err)
	}
	if total, _ := s.Activate(ctx, "imp-b", 2, now); total != 2 {
		t.Errorf("Activate b = %d, want 2: a was last seen a minute ago", total)
	}
	if total, _ := s.Activate(ctx, "imp-c", 1, now); total != 3 {
		t.Errorf("Activate c = %d, want 3", total)
	}
	if err := s.Deactivate(ctx, "imp-b"); err != nil {
		t.Fatal(err)
	}
	if total, _ := s.Activate(ctx, "imp-c", 1, now.Add(time.Second)); total != 1 {
		t.Errorf("after b left: %d, want 1", total)
	}

	newImport(t, s, "imp-q")
	header, _ := s.InputHeader(ctx, "imp-q", []string{"a"})
	var rows []importer.Row
	for n := 1; n <= 6; n++ {
		rows = append(rows, importer.Row{Number: n, Line: n + 1, Columns: []importer.Column{{Name: "a", Value: "v"}}})
	}
	s.SaveInput(ctx, "imp-q", header, rows, nil)
	s.SetTotal(ctx, "imp-q", 6, importer.FileColumns{Names: header})
	gen, _ := s.StartFeed(ctx, "imp-q")
	if _, _, _, queued, err := s.FeedBatch(ctx, "imp-q", gen, 1, 6, 100, 5); err != nil || queued != 5 {
		t.Fatalf("FeedBatch with a quota of 5: %d queued, %v", queued, err)
	}
	sendRow(s, "imp-q", 1, "")                                                               // being sent: not queued
	resolve(t, s, "imp-q", importer.RowResult{Row: 2, Outcome: importer.Succeeded})          // gone
	s.Move(ctx, "imp-q", importer.Move{Row: 3, To: importer.PhaseRetryQueued, Job: "job_9"}) // to be retried: queued
	if n, err := s.Queued(ctx, "imp-q"); err != nil || n != 3 {
		t.Errorf("Queued = %d, %v; want 3 (rows 3, 4 and 5)", n, err)
	}
}

// Imports take turns by weight: one more than the slack ahead of the
// slowest import sending waits; one that stopped sending holds nobody back
// once it is no longer fresh; a newcomer starts at the slowest one's time.
func TestTurns(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	t0 := time.Now()
	if err := s.Sent(ctx, "b", 2, t0); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := s.Sent(ctx, "a", 2, t0); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := s.Turn(ctx, "a", 2, 2, t0); ok {
		t.Error("a, 5 creates to b's 1 at the same weight, may send past a slack of 4")
	}
	if ok, _ := s.Turn(ctx, "b", 2, 2, t0); !ok {
		t.Error("b, behind, may not send")
	}
	for range 4 {
		s.Sent(ctx, "high", 4, t0) // a newcomer starts at b's time; 4 creates are one turn
	}
	if ok, _ := s.Turn(ctx, "high", 4, 2, t0); !ok {
		t.Error("a high-priority import 4 creates in (one turn) may not send")
	}
	later := t0.Add(3 * time.Second)
	if ok, _ := s.Turn(ctx, "a", 2, 2, later); !ok {
		t.Error("a still waits for b, which stopped sending 3 s ago")
	}
}
