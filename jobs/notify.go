package jobs

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/notify"
)

// This file tells people what became of their imports: each event of an
// import (finished, stopped, refused by its guard) or of a schedule's firing
// (a file refused, no file) becomes one import:notify task per target, under
// a fixed task id, so that an event is announced once however many workers
// see it and however often its task is retried; the task delivers it,
// retried with backoff while the target fails. A target that keeps failing
// is logged and counted; the import never waits for it.

// TypeNotify delivers an event to a notification target.
const TypeNotify = "import:notify"

// QueueNotify is the queue of the notifications: after the rows' work.
const QueueNotify = "importer-notify"

// notifyMaxRetry is how often a delivery is tried again while its target
// fails: with RetryDelay's backoff, for about half an hour.
const notifyMaxRetry = 12

// NotifyPayload is the payload of an import:notify task: the event, by its
// facts and not its contents (the task reads the import's counts when it
// runs), and the target by id.
type NotifyPayload struct {
	// EventID names the event: the same for every target and attempt.
	EventID  string                `json:"event_id"`
	Kind     importer.EventKind    `json:"event"`
	Target   importer.NotifyTarget `json:"target"`
	ImportID string                `json:"import_id,omitempty"`
	Schedule string                `json:"schedule,omitempty"`
	File     string                `json:"file,omitempty"`
	Reason   string                `json:"reason,omitempty"`
	At       time.Time             `json:"at"`
}

// Sender delivers an event to a target; notify.Sender is one.
type Sender interface {
	Send(ctx context.Context, t notify.Target, e importer.Event) error
}

// announceImport announces an event of an import to its targets (and to
// this process's own, for an import no schedule started). reason is why it
// stopped, for a stop.
func (lc *lifecycle) announceImport(ctx context.Context, imp importer.Import, kind importer.EventKind, reason string) {
	lc.announce(ctx, NotifyPayload{EventID: importEventID(imp, kind, reason), Kind: kind, ImportID: imp.ID, Schedule: imp.Schedule, File: imp.File, Reason: reason},
		lc.targetsOf(imp))
}

// targetsOf are the targets told about an import's events: its own, and
// this process's for an import no schedule started.
func (lc *lifecycle) targetsOf(imp importer.Import) []importer.NotifyTarget {
	if imp.Schedule != "" {
		return imp.Notify
	}
	return append(slices.Clip(imp.Notify), lc.cfg.Notify...)
}

// importEventID names an event of an import's round. A stop, resumed and
// stopped again in the same round, is another event unless it is for the
// same reason.
func importEventID(imp importer.Import, kind importer.EventKind, reason string) string {
	id := imp.ID + "." + strconv.Itoa(imp.Round) + "." + string(kind)
	if reason != "" {
		id += "." + shortHash(reason)
	}
	return id
}

// notifiedStat is the counter that says an event's delivery to a target
// ended: delivered, or given up.
func notifiedStat(eventID, targetID string) string { return "notified:" + eventID + ":" + targetID }

// NotificationsPending returns how many of the notifications of a
// finished import's end have not ended yet (delivered, or given up): a run
// whose own workers deliver them waits for them before it exits.
func (fin *Finishing) NotificationsPending(ctx context.Context, id string) (int, error) {
	imp, err := fin.store.Import(ctx, id)
	if err != nil || !imp.Finished() {
		return 0, err
	}
	p, err := fin.store.Progress(ctx, id)
	if err != nil {
		return 0, err
	}
	kind := importer.FinishedEvent(p)
	eventID := importEventID(imp, kind, "")
	stats, err := fin.store.Stats(ctx, id)
	if err != nil {
		return 0, err
	}
	pending := 0
	for _, t := range wanting(fin.targetsOf(imp), kind) {
		if stats[notifiedStat(eventID, t.ID)] == 0 {
			pending++
		}
	}
	return pending, nil
}

// wanting returns the targets that want events of kind, each once.
func wanting(targets []importer.NotifyTarget, kind importer.EventKind) []importer.NotifyTarget {
	var out []importer.NotifyTarget
	for _, t := range targets {
		if t.Wants(kind) && !slices.ContainsFunc(out, func(o importer.NotifyTarget) bool { return o.ID == t.ID }) {
			out = append(out, t)
		}
	}
	return out
}

// announceFiring announces an event of a schedule's firing: key tells the
// event apart from the schedule's others (the firing, the file).
func (lc *lifecycle) announceFiring(ctx context.Context, s ScheduledImport, kind importer.EventKind, key, file, reason string) {
	id := "schedule." + s.Name + "." + string(kind) + "." + shortHash(key)
	lc.announce(ctx, NotifyPayload{EventID: id, Kind: kind, Schedule: s.Name, File: file, Reason: reason}, s.Notify)
}

// announce queues the event's delivery to each target that wants it, once:
// the task's id is fixed by the event and the target, and kept a day after
// it ran. A failure to queue is logged: an announcement never fails the
// work it tells of.
func (lc *lifecycle) announce(ctx context.Context, p NotifyPayload, targets []importer.NotifyTarget) {
	p.At = time.Now().UTC()
	for _, t := range wanting(targets, p.Kind) {
		p.Target = t
		b, err := json.Marshal(p)
		if err == nil {
			err = lc.enqueue(ctx, asynq.NewTask(TypeNotify, b), asynq.TaskID("notify:"+p.EventID+":"+t.ID), asynq.Queue(QueueNotify),
				asynq.MaxRetry(notifyMaxRetry), asynq.Timeout(2*time.Minute), asynq.Retention(24*time.Hour))
		}
		if err != nil {
			lc.log.ErrorContext(ctx, "cannot queue a notification", "event", p.EventID, "target", t.ID, "error", err)
		}
	}
}

// Notify handles import:notify: it reads the event's counts and delivers
// it. An error retries the task; a target whose address is not kept (its
// scheduler or run has not saved it) is not retried.
func (fin *Finishing) Notify(ctx context.Context, p NotifyPayload) error {
	if fin.cfg.Sender == nil {
		return errors.New("this process sends no notifications: no sender is configured")
	}
	address, ok, err := fin.store.NotifyAddress(ctx, p.Target.ID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("notification target %s is not known to this Redis (start the scheduler or the run that names it again): %w", p.Target.ID, asynq.SkipRetry)
	}
	target, err := notify.Parse(address)
	if err != nil {
		return fmt.Errorf("notification target %s: %v: %w", p.Target.ID, err, asynq.SkipRetry)
	}
	ev, err := fin.event(ctx, p)
	if err != nil {
		return err
	}
	if err := fin.cfg.Sender.Send(ctx, target, ev); err != nil {
		fin.log.WarnContext(ctx, "notification not delivered; retrying", "event", p.EventID, "target", target.String(), "error", err)
		return err
	}
	fin.count(ctx, p.ImportID, importer.StatNotified, notifiedStat(p.EventID, p.Target.ID))
	fin.log.InfoContext(ctx, "notification delivered", "event", p.EventID, "target", target.String())
	return nil
}

// notifyFailed records a delivery given up for good: logged and counted.
func (fin *Finishing) notifyFailed(ctx context.Context, p NotifyPayload, err error) {
	fin.log.ErrorContext(ctx, "notification given up: its target kept failing", "event", p.EventID, "target", p.Target.ID, "error", err)
	fin.count(ctx, p.ImportID, importer.StatNotifyFailed, notifiedStat(p.EventID, p.Target.ID))
}

// eventRows is how many failed rows a notification that opted in shows.
const eventRows = 5

// event builds the event a notification tells: for an import, its state,
// counts and top error codes as they are now, with the first failed rows
// only for a target that opted in.
func (fin *Finishing) event(ctx context.Context, p NotifyPayload) (importer.Event, error) {
	ev := importer.Event{ID: p.EventID, Kind: p.Kind, At: p.At, Schedule: p.Schedule, File: p.File, ImportID: p.ImportID, Reason: p.Reason}
	if p.ImportID == "" {
		return ev, nil
	}
	imp, err := fin.store.Import(ctx, p.ImportID)
	if errors.Is(err, importer.ErrImportNotFound) {
		return ev, nil // gone from Redis: the event's facts are all there is
	}
	if err != nil {
		return ev, err
	}
	sum, err := fin.store.Summary(ctx, imp.ID)
	if err != nil {
		return ev, err
	}
	ev.State, ev.Mode, ev.Total, ev.Seconds, ev.Summary = imp.State(), imp.Options.Mode, sum.Total, sum.Seconds, &sum
	ev.Counts = map[importer.Outcome]int{}
	for o, n := range sum.Counts {
		if n > 0 {
			ev.Counts[o] = n
		}
	}
	if fin.cfg.DashboardURL != "" {
		ev.Dashboard = strings.TrimSuffix(fin.cfg.DashboardURL, "/") + "/imports/" + imp.ID
	}
	if fin.reports != nil && imp.Finished() {
		if dir, current := fin.reports.Written(imp); current {
			ev.Report = dir
		}
	}
	if importer.FineRows(sum.Counts) == sum.Total {
		return ev, nil
	}
	codes := map[string]int{}
	for row, err := range fin.store.Rows(ctx, imp.ID, imp.Total) {
		if err != nil {
			return ev, err
		}
		r := row.Result
		if r.Outcome == "" || r.Outcome.Fine() {
			continue
		}
		codes[cmp.Or(r.ErrorCode, string(r.Outcome))]++
		if p.Target.IncludeRows && len(ev.Rows) < eventRows {
			ev.Rows = append(ev.Rows, importer.EventRow{Row: r.Row, Line: r.Line, Outcome: r.Outcome, ErrorCode: r.ErrorCode, Error: r.Error,
				Who: imp.Options.Mapping.RowOf(r.Row, r.Line, row.Columns).Who()})
		}
	}
	for code, n := range codes {
		ev.TopErrors = append(ev.TopErrors, importer.CodeCount{Code: code, Rows: n})
	}
	slices.SortFunc(ev.TopErrors, func(a, b importer.CodeCount) int {
		return cmp.Or(cmp.Compare(b.Rows, a.Rows), cmp.Compare(a.Code, b.Code))
	})
	ev.TopErrors = ev.TopErrors[:min(len(ev.TopErrors), topErrors)]
	return ev, nil
}

// shortHash names a text in a few characters.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}
