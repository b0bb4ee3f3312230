package importer_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/importer"
)

var allEffects = []importer.Effect{importer.EffectSend, importer.EffectLookUp, importer.EffectReadStatus, importer.EffectScheduleCheck,
	importer.EffectRecord, importer.EffectRequeue, importer.EffectRetry}

// Every phase × every event: the rules no transition may break, checked
// for each pair of the table (including the pairs it leaves out).
func TestEveryTransitionKeepsTheRules(t *testing.T) {
	for _, from := range importer.Phases {
		for _, e := range importer.RowEvents {
			tr, ok := importer.Next(from, e)
			name := string(from) + " + " + string(e)
			if !slices.Contains(importer.Phases, tr.To) {
				t.Errorf("%s: moves to %q, no phase", name, tr.To)
			}
			for _, eff := range tr.Effects {
				if !slices.Contains(allEffects, eff) {
					t.Errorf("%s: effect %q is none of the effects", name, eff)
				}
			}
			if !ok && (tr.To != from || len(tr.Effects) > 0) {
				t.Errorf("%s: an event that does not apply changed something: %+v", name, tr)
			}
			// Nothing twice: a write is sent only where nothing of it
			// can have reached the API, or where sending it twice
			// changes nothing (an update).
			if tr.Has(importer.EffectSend) && !from.MaySendAgain() && e != importer.RowUpdateDue && e != importer.RowUpdateCancelled {
				t.Errorf("%s: sends a write that may have reached the API already", name)
			}
			// A row that may have been sent goes back to be sent again
			// only when the API said nothing was written.
			if !from.MaySendAgain() && tr.To.MaySendAgain() && e != importer.RowSendFailed && e != importer.RowThrottled && !strings.HasPrefix(string(e), "reopen") {
				t.Errorf("%s: a write that may have been sent is offered to send again", name)
			}
			// An outcome is recorded exactly when a row resolves.
			if tr.Has(importer.EffectRecord) != (tr.To == importer.PhaseResolved && from != importer.PhaseResolved) {
				t.Errorf("%s: records %v, resolving %v", name, tr.Has(importer.EffectRecord), tr.To == importer.PhaseResolved)
			}
			// A resolved row stays resolved but for a retry.
			if from == importer.PhaseResolved && ok != strings.HasPrefix(string(e), "reopen") {
				t.Errorf("%s: applies %v to a resolved row", name, ok)
			}
			if strings.HasPrefix(string(e), "reopen") && ok && from != importer.PhaseResolved {
				t.Errorf("%s: a retry takes back a row that has no outcome", name)
			}
			// A wait is never a failure: the row stays, the task waits.
			if e == importer.RowWait && ok && (tr.To != from || !slices.Equal(tr.Effects, []importer.Effect{importer.EffectRequeue})) {
				t.Errorf("%s: a wait did %+v", name, tr)
			}
			if tr.Has(importer.EffectRequeue) && tr.Has(importer.EffectRetry) {
				t.Errorf("%s: both waits and fails", name)
			}
			// A cancel never ends a write that may have been sent.
			if (e == importer.RowSubmitCancelled || e == importer.RowUpdateCancelled) && ok && !from.MaySendAgain() && tr.To == importer.PhaseResolved {
				t.Errorf("%s: a cancel resolved a write that may have been sent", name)
			}
			// A stopped import sends nothing and records nothing.
			if (e == importer.RowSubmitStopped || e == importer.RowCheckStopped) && (tr.Has(importer.EffectSend) || tr.Has(importer.EffectRecord)) {
				t.Errorf("%s: a stopped import's row did %+v", name, tr)
			}
		}
	}
}

// The transitions the workers rely on, by name.
func TestTheLifecycle(t *testing.T) {
	for _, tt := range []struct {
		from    importer.Phase
		event   importer.RowEvent
		to      importer.Phase
		effects []importer.Effect
		ok      bool
	}{
		{importer.PhaseUnfed, importer.RowFed, importer.PhaseQueued, nil, true},
		{importer.PhaseQueued, importer.RowSubmitDue, importer.PhaseQueued, []importer.Effect{importer.EffectSend}, true},
		{importer.PhaseQueued, importer.RowWait, importer.PhaseQueued, []importer.Effect{importer.EffectRequeue}, true},
		{importer.PhaseQueued, importer.RowSendStarted, importer.PhaseSending, nil, true},
		{importer.PhaseQueued, importer.RowSubmitCancelled, importer.PhaseResolved, []importer.Effect{importer.EffectRecord}, true},
		{importer.PhaseQueued, importer.RowSubmitStopped, importer.PhaseQueued, nil, true},
		{importer.PhaseQueued, importer.RowRecoveredDue, importer.PhaseQueued, []importer.Effect{importer.EffectLookUp}, true},
		{importer.PhaseQueued, importer.RowNotFound, importer.PhaseQueued, []importer.Effect{importer.EffectSend}, true},
		{importer.PhaseLookFirst, importer.RowSubmitDue, importer.PhaseLookFirst, []importer.Effect{importer.EffectLookUp}, true},
		{importer.PhaseLookFirst, importer.RowFound, importer.PhaseResolved, []importer.Effect{importer.EffectRecord}, true},
		{importer.PhaseRetryQueued, importer.RowSendStarted, importer.PhaseSendingRetry, nil, true},
		{importer.PhaseSending, importer.RowSent, importer.PhaseFollowing, []importer.Effect{importer.EffectScheduleCheck}, true},
		{importer.PhaseSending, importer.RowSendFailed, importer.PhaseQueued, []importer.Effect{importer.EffectRetry}, true},
		{importer.PhaseSendingRetry, importer.RowSendFailed, importer.PhaseRetryQueued, []importer.Effect{importer.EffectRetry}, true},
		{importer.PhaseSending, importer.RowThrottled, importer.PhaseQueued, []importer.Effect{importer.EffectRequeue}, true},
		{importer.PhaseSending, importer.RowMaybeSent, importer.PhaseSending, []importer.Effect{importer.EffectRequeue}, true},
		{importer.PhaseSending, importer.RowSubmitDue, importer.PhaseSending, []importer.Effect{importer.EffectLookUp}, true},
		{importer.PhaseSending, importer.RowUpdateDue, importer.PhaseSending, []importer.Effect{importer.EffectSend}, true},
		{importer.PhaseSending, importer.RowSubmitCancelled, importer.PhaseSending, []importer.Effect{importer.EffectLookUp}, true},
		{importer.PhaseSending, importer.RowNotFound, importer.PhaseSending, []importer.Effect{importer.EffectRequeue}, true},
		{importer.PhaseSending, importer.RowInDoubt, importer.PhaseResolved, []importer.Effect{importer.EffectRecord}, true},
		{importer.PhaseFollowing, importer.RowSubmitDue, importer.PhaseFollowing, []importer.Effect{importer.EffectScheduleCheck}, true},
		{importer.PhaseFollowing, importer.RowSubmitCancelled, importer.PhaseFollowing, []importer.Effect{importer.EffectScheduleCheck}, true},
		{importer.PhaseFollowing, importer.RowCheckDue, importer.PhaseFollowing, []importer.Effect{importer.EffectReadStatus}, true},
		{importer.PhaseFollowing, importer.RowPending, importer.PhaseFollowing, []importer.Effect{importer.EffectScheduleCheck}, true},
		{importer.PhaseFollowing, importer.RowCheckStopped, importer.PhaseParked, nil, true},
		{importer.PhaseFollowing, importer.RowJobResolved, importer.PhaseResolved, []importer.Effect{importer.EffectRecord}, true},
		{importer.PhaseFollowing, importer.RowTimedOut, importer.PhaseResolved, []importer.Effect{importer.EffectRecord}, true},
		{importer.PhaseParked, importer.RowSubmitDue, importer.PhaseFollowing, []importer.Effect{importer.EffectScheduleCheck}, true},
		{importer.PhaseParked, importer.RowSubmitStopped, importer.PhaseParked, nil, false},
		{importer.PhaseParked, importer.RowCheckDue, importer.PhaseParked, nil, false},
		{importer.PhaseResolved, importer.RowSubmitDue, importer.PhaseResolved, nil, false},
		{importer.PhaseResolved, importer.RowJobResolved, importer.PhaseResolved, nil, false},
		{importer.PhaseResolved, importer.RowReopen, importer.PhaseQueued, nil, true},
		{importer.PhaseResolved, importer.RowReopenRetryWrite, importer.PhaseRetryQueued, nil, true},
		{importer.PhaseResolved, importer.RowReopenFollow, importer.PhaseParked, nil, true},
		{importer.PhaseResolved, importer.RowReopenLookFirst, importer.PhaseLookFirst, nil, true},
	} {
		tr, ok := importer.Next(tt.from, tt.event)
		if tr.To != tt.to || !slices.Equal(tr.Effects, tt.effects) || ok != tt.ok {
			t.Errorf("%s + %s = %+v %v, want %s %v %v", tt.from, tt.event, tr, ok, tt.to, tt.effects, tt.ok)
		}
	}
}

// The store's encodings of a row's state name their phase.
func TestRowStatePhase(t *testing.T) {
	for _, tt := range []struct {
		state importer.RowState
		phase importer.Phase
	}{
		{importer.RowState{}, importer.PhaseUnfed},
		{importer.RowState{Queued: true}, importer.PhaseQueued},
		{importer.RowState{LookFirst: true}, importer.PhaseLookFirst},
		{importer.RowState{RetryOf: "job_1"}, importer.PhaseRetryQueued},
		{importer.RowState{Sending: true, Lookups: 2}, importer.PhaseSending},
		{importer.RowState{Sending: true, RetryOf: "job_1"}, importer.PhaseSendingRetry},
		{importer.RowState{JobID: "job_1", Check: 3}, importer.PhaseFollowing},
		{importer.RowState{JobID: "job_1"}, importer.PhaseParked},
		{importer.RowState{JobID: "job_1", Check: 3, Resolved: true}, importer.PhaseResolved},
	} {
		if got := tt.state.Phase(); got != tt.phase {
			t.Errorf("%+v: phase %s, want %s", tt.state, got, tt.phase)
		}
	}
	if got := importer.SubmitEvent(true, false, true, true); got != importer.RowUpdateCancelled {
		t.Errorf("an update of a cancelled and stopped import: %s", got)
	}
	if got := importer.SubmitEvent(false, true, false, false); got != importer.RowRecoveredDue {
		t.Errorf("a create of a recovered import: %s", got)
	}
}

// ARCHITECTURE.md draws the table as it is: its diagram is the one
// LifecycleMermaid makes (UPDATE_DIAGRAM=1 go test ./importer -run
// TestTheDiagramIsTheTable writes it).
func TestTheDiagramIsTheTable(t *testing.T) {
	path := "../ARCHITECTURE.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	const begin, end = "```mermaid\n", "```\n"
	i := strings.Index(doc, begin)
	j := strings.Index(doc[i+len(begin):], end)
	if i < 0 || j < 0 {
		t.Fatalf("%s has no mermaid block", path)
	}
	drawn := doc[i+len(begin) : i+len(begin)+j]
	if want := importer.LifecycleMermaid(); drawn != want {
		if os.Getenv("UPDATE_DIAGRAM") != "" {
			if err := os.WriteFile(path, []byte(doc[:i+len(begin)]+want+doc[i+len(begin)+j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("the diagram in %s is not the lifecycle's table; run UPDATE_DIAGRAM=1 go test ./importer -run TestTheDiagramIsTheTable\nwant:\n%s", path, want)
	}
}

// FuzzLifecycle follows a row through any sequence of events: it is
// always in a phase, records an outcome at most once per round (a retry
// opens a new one), and never sends a write twice unless the API said
// the first was not written (or it is an update, which changes nothing
// the second time).
func FuzzLifecycle(f *testing.F) {
	f.Add([]byte{0, 1, 7, 8})
	f.Add([]byte{0, 1, 7, 10, 1, 7, 9, 13, 17})
	f.Fuzz(func(t *testing.T, events []byte) {
		phase := importer.PhaseUnfed
		recorded, sent := 0, false
		for _, b := range events {
			e := importer.RowEvents[int(b)%len(importer.RowEvents)]
			tr, _ := importer.Next(phase, e)
			if !slices.Contains(importer.Phases, tr.To) {
				t.Fatalf("%s + %s: no phase %q", phase, e, tr.To)
			}
			if strings.HasPrefix(string(e), "reopen") && phase == importer.PhaseResolved {
				recorded, sent = 0, false
			}
			if tr.Has(importer.EffectRecord) {
				if recorded++; recorded > 1 {
					t.Fatalf("%s + %s: a second outcome in one round", phase, e)
				}
			}
			if e == importer.RowSendStarted && tr.To != phase {
				if sent {
					t.Fatalf("%s + %s: sent a second time", phase, e)
				}
				sent = true
			}
			if (e == importer.RowSendFailed || e == importer.RowThrottled) && tr.To != phase {
				sent = false // nothing was written
			}
			if phase == importer.PhaseResolved && tr.To != importer.PhaseResolved && !strings.HasPrefix(string(e), "reopen") {
				t.Fatalf("%s + %s: a resolved row moved", phase, e)
			}
			phase = tr.To
		}
	})
}
