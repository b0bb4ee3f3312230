package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/propexo-importer/importer/importer"
)

// TypeFeed queues an import's submits a window at a time.
const TypeFeed = "import:feed"

// DefaultWindow is how many rows of an import may be in flight (queued,
// sent or followed, without an outcome yet) at once.
const DefaultWindow = 5000

// feedBatch is how many rows a feed passes per round trip.
const feedBatch = 500

// feedEvery is how long a feed whose window is full, or whose share is
// queued, waits before it looks again, unless a resolve wakes it first;
// Asynq schedules to the second.
const feedEvery = 2 * time.Second

// shareEvery is how soon a feed whose share is queued looks again: its
// rows are sent meanwhile.
const shareEvery = time.Second

// DefaultAhead is how much of the rate limit's budget the imports keep
// queued ahead of the workers: at 150 requests a minute, 8 submits; at
// 600, 30. A new import's first rows wait behind that much of the others'
// (with their status checks, about twice as long); the feeds, which look
// every second, keep it from running dry.
const DefaultAhead = 3 * time.Second

// minAhead is the fewest submits kept queued ahead, however slow the limit.
const minAhead = 4

// FeedPayload is the payload of an import:feed task.
type FeedPayload struct {
	ImportID string `json:"import_id"`
	// Gen is the feed's generation: a split starts a new one, and a task
	// of an older generation ends without doing anything.
	Gen int `json:"gen"`
	// Seq numbers the tasks of one generation, so each has its own id.
	Seq int `json:"seq"`
}

// NewFeedTask returns a feed task and its options.
func NewFeedTask(p FeedPayload) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, nil, err
	}
	return asynq.NewTask(TypeFeed, b), []asynq.Option{
		asynq.TaskID("feed:" + p.ImportID + ":" + strconv.Itoa(p.Gen) + ":" + strconv.Itoa(p.Seq)),
		asynq.Queue(QueueFinalize), asynq.MaxRetry(25), asynq.Timeout(10 * time.Minute),
	}, nil
}

// enqueueWake queues a feed task that waits for room at once, beside its
// delayed twin (whichever runs first feeds; the other finds less to do).
func enqueueWake(ctx context.Context, q Enqueuer, p FeedPayload) error {
	task, opts, err := NewFeedTask(p)
	if err != nil {
		return err
	}
	return enqueue(ctx, q, task, append(opts, asynq.TaskID("feed:"+p.ImportID+":"+strconv.Itoa(p.Gen)+":"+strconv.Itoa(p.Seq)+":wake"))...)
}

// EnqueueFeed queues a feed task, after delay.
func EnqueueFeed(ctx context.Context, q Enqueuer, p FeedPayload, delay time.Duration) error {
	task, opts, err := NewFeedTask(p)
	if err != nil {
		return err
	}
	return enqueue(ctx, q, task, append(opts, asynq.ProcessIn(delay))...)
}

// Feed handles import:feed. It moves the import's cursor over the stored
// rows and queues the submit of each row without an outcome, while fewer
// than the window's rows are in flight and the import's share of the
// budget allows; rows resolve and make room, and the feed, rescheduled every
// two seconds while the window is full or its share queued, goes on from
// its cursor until it has passed the last row. A stopped import's feed
// ends: the run that resumes it starts a new one.
//
// The share: every import feeding rows keeps only its share of Ahead's
// budget queued ahead of the workers (see share), so the submit queue is
// never minutes deep with one import's rows, and a small import started
// beside a big one has its rows sent within seconds, at its weight's share
// of the rate.
//
// A feed that dies goes over its rows again: the cursor moves only once
// their tasks are queued, and a task already on the queue is not queued
// twice.
func (fd *Feeding) Feed(ctx context.Context, p FeedPayload) error {
	fs, imp, live, err := fd.feeding(ctx, p.ImportID, p.Gen, "feed")
	if !live || err != nil {
		return err
	}
	quota, err := fd.share(ctx, imp)
	if err != nil {
		return err
	}
	v := importer.NewValidator(imp.Options)
	for cursor := fs.Cursor; cursor <= fs.Total; {
		last := min(fs.Total, cursor+feedBatch-1)
		next, rows, states, queued, err := fd.store.FeedBatch(ctx, p.ImportID, p.Gen, cursor, last, fd.cfg.Window, quota)
		if errors.Is(err, importer.ErrFeedSuperseded) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fd.queueRows(ctx, imp, v, rows, states, false); err != nil {
			return err
		}
		if err := fd.store.AdvanceCursor(ctx, p.ImportID, p.Gen, next); errors.Is(err, importer.ErrFeedSuperseded) {
			return nil
		} else if err != nil {
			return err
		}
		if quota >= 0 {
			quota -= queued
			if next <= last && quota <= 0 {
				// Its share is queued: the feed looks again within a
				// second, with the share of that moment.
				return EnqueueFeed(ctx, fd.queue, FeedPayload{ImportID: p.ImportID, Gen: p.Gen, Seq: p.Seq + 1}, shareEvery)
			}
		}
		if next <= last { // the window is full
			fd.log.DebugContext(ctx, "feed waits for room", "import_id", p.ImportID, "cursor", next)
			// A resolve wakes the next feed when a tenth of the window is
			// free; the delayed task is the fallback, should that wake
			// be missed (a row resolved between the batch and the pause).
			wake := fd.cfg.Window - max(fd.cfg.Window/10, 1)
			if err := fd.store.PauseFeed(ctx, p.ImportID, p.Gen, p.Seq+1, wake); err != nil {
				return err
			}
			return EnqueueFeed(ctx, fd.queue, FeedPayload{ImportID: p.ImportID, Gen: p.Gen, Seq: p.Seq + 1}, feedEvery)
		}
		cursor = next
	}
	// Every row is queued: the import needs no share of the submits now.
	if fd.cfg.Limiter == nil {
		return nil // it never took one
	}
	if err := fd.store.Deactivate(ctx, imp.ID); err != nil {
		fd.log.WarnContext(ctx, "cannot leave the budget to the other imports; they get it back within seconds", "import_id", imp.ID, "error", err)
	}
	return nil
}

// share returns how many more rows the import may queue now: its weight's
// share of Ahead's budget, less its rows queued and not sent yet; -1
// without a rate limit, where each import queues its window. Every import
// that feeds rows is active for a few seconds after its feed last ran, so
// the shares follow imports as they start and end. The submit queue, served
// first come first served, then holds each import's rows in proportion to
// its weight, and so sends them in that proportion.
func (fd *Feeding) share(ctx context.Context, imp importer.Import) (int, error) {
	if fd.cfg.Limiter == nil {
		return -1, nil
	}
	weight := imp.Options.Priority.Weight()
	total, err := fd.store.Activate(ctx, imp.ID, weight, time.Now())
	if err != nil {
		return 0, err
	}
	queued, err := fd.store.Queued(ctx, imp.ID)
	if err != nil {
		return 0, err
	}
	ahead := max(fd.cfg.Limiter.PerSecond()*fd.cfg.Ahead.Seconds(), minAhead)
	mine := int(math.Ceil(ahead * float64(weight) / float64(max(total, weight))))
	return max(mine-queued, 0), nil
}

// feeding reads the feed and the import that a task of feed generation gen
// works for; live is false when the task has nothing to do: a newer split
// took over, the import stopped, or it is gone (what names the task for
// the log).
func (fd *Feeding) feeding(ctx context.Context, importID string, gen int, what string) (importer.FeedState, importer.Import, bool, error) {
	fs, err := fd.store.Feed(ctx, importID)
	if err != nil || fs.Gen != gen || fs.Stopped {
		return fs, importer.Import{}, false, err
	}
	imp, err := fd.store.Import(ctx, importID)
	if errors.Is(err, importer.ErrImportNotFound) {
		fd.log.WarnContext(ctx, "the import is gone from Redis: its "+what+" ends", "import_id", importID)
		return fs, imp, false, nil
	}
	return fs, imp, err == nil, err
}

// queueRows queues the submits of rows the feed passed, except those whose
// job is already followed by a chain of status checks (unless followed:
// their submit puts the current check back on the queue).
func (fd *Feeding) queueRows(ctx context.Context, imp importer.Import, v *importer.Validator, rows []int, states []importer.RowState, followed bool) error {
	send := rows[:0:0]
	for i, r := range rows {
		if s := states[i]; s.JobID != "" && s.Check > 0 && !followed {
			continue
		}
		send = append(send, r)
	}
	if len(send) == 0 {
		return nil
	}
	stored, err := fd.store.Inputs(ctx, imp.ID, send)
	if err != nil {
		return err
	}
	var plans map[int]importer.Update
	if imp.Options.Mode.Matches() {
		if plans, err = fd.store.Plans(ctx, imp.ID, send); err != nil {
			return err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(feedEnqueuers)
	for _, in := range stored {
		row := v.Row(in.Number, in.Line, in.Columns)
		resident, problems := v.Resident(row)
		if len(problems) > 0 || len(in.Columns) == 0 {
			// The split found it valid: the rules changed under it (a date
			// of birth now in the future), or its record is gone.
			why := "its stored record is missing"
			if len(problems) > 0 {
				why = importer.JoinProblems(problems)
			}
			r := importer.RowResult{Row: in.Number, Line: in.Line, Outcome: importer.Invalid, ErrorCode: importer.CodeInvalid, Error: why}
			g.Go(func() error { return fd.resolve(gctx, imp.ID, r) })
			continue
		}
		p := SubmitPayload{ImportID: imp.ID, Row: in.Number, Line: in.Line, Vendor: imp.Options.Vendor,
			Resident: resident, Deadline: imp.Deadline(), FollowFor: imp.Options.Deadline, Verify: imp.Options.Verify, Round: imp.Round, LookFirst: imp.Recovery != nil,
			Priority: imp.Options.Priority}
		if u, ok := plans[in.Number]; ok && !u.Create {
			p.Update = &u
		}
		task, opts, err := NewSubmitTask(p, fd.cfg.MaxRetry)
		if err != nil {
			return err
		}
		if imp.Recovery != nil && time.Now().Before(imp.Recovery.LookupFrom) {
			// Writes sent before the loss resolve meanwhile.
			opts = append(opts, asynq.ProcessAt(CheckAt(imp.Recovery.LookupFrom, 0)))
		}
		g.Go(func() error { return enqueue(gctx, fd.queue, task, opts...) })
	}
	return g.Wait()
}

// feedEnqueuers is how many submits a feed puts on the queue at once: each
// is a round trip to Redis.
const feedEnqueuers = 8
