package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// Redis replicates asynchronously, and Asynq keeps its tasks in Redis: a
// failover can lose the last moment's tasks (a submit just queued, a status
// check just scheduled, a feed's next step) while the rows they were for
// stay in flight. Nothing would ever run them, and the import would never
// end. So each worker watches the primaries' lineage (see
// Store.Lineage); when it changes, Repair queues again what every unfinished
// import needs. Every task has a fixed id, so a task that survived is not
// queued twice, and a submit that finds its row sent or followed sends
// nothing (see Submit).

// Repair queues again the tasks every unfinished import needs after Redis
// may have lost some: each row in flight gets its submit (which, for a row
// already followed, only puts its current status check back), the feed
// starts a new generation (or, for a sync, the plan, which starts it), and
// an import with every row resolved gets its finalize. It returns how many
// imports it repaired.
func (adm *Administering) Repair(ctx context.Context) (int, error) {
	ids, err := adm.store.ImportsBefore(ctx, time.Now().Add(time.Hour))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		imp, err := adm.store.Import(ctx, id)
		if errors.Is(err, importer.ErrImportNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		if imp.Finished() || imp.Stopped != "" {
			continue // a stopped import is resumed by running it again
		}
		if err := adm.repair(ctx, imp); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (adm *Administering) repair(ctx context.Context, imp importer.Import) error {
	progress, err := adm.store.Progress(ctx, imp.ID)
	if err != nil {
		return err
	}
	if progress.Done() {
		return EnqueueFinalize(ctx, adm.queue, imp.ID, imp.Round)
	}
	rows, states, err := adm.store.RowsInFlight(ctx, imp.ID)
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		if err := adm.feed.queueRows(ctx, imp, importer.NewValidator(imp.Options), rows, states, true); err != nil {
			return err
		}
	}
	if progress.Total < 0 {
		return nil // still being split: the split starts the feed
	}
	gen, err := adm.store.StartFeed(ctx, imp.ID)
	if err != nil {
		return err
	}
	if imp.Options.Mode.Matches() {
		return EnqueuePlan(ctx, adm.queue, PlanPayload{ImportID: imp.ID, Gen: gen})
	}
	return EnqueueFeed(ctx, adm.queue, FeedPayload{ImportID: imp.ID, Gen: gen, Seq: 1}, 0)
}

// WatchRedis repairs the unfinished imports (see Repair) whenever the Redis
// primaries' lineage changes, checking every interval until ctx ends. A
// lineage it cannot read is looked at again at the next interval.
func (adm *Administering) WatchRedis(ctx context.Context, every time.Duration) {
	seen := ""
	for {
		lineage, err := adm.store.Lineage(ctx)
		switch {
		case err != nil || lineage == "":
		case seen == "":
			seen = lineage
		case lineage != seen:
			n, err := adm.Repair(ctx)
			if err != nil {
				adm.log.WarnContext(ctx, "Redis has a new primary (a failover or a restart); queuing the unfinished imports' tasks again failed, and is tried again shortly", "error", err)
				break
			}
			seen = lineage
			adm.log.WarnContext(ctx, "Redis has a new primary (a failover or a restart): the tasks of the unfinished imports were queued again, in case it lost some", "imports", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
