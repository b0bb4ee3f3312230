package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
)

// TypeFinalize writes an import's report once every row has its outcome.
const TypeFinalize = "import:finalize"

// FinalizePayload is the payload of an import:finalize task.
type FinalizePayload struct {
	ImportID string `json:"import_id"`
	Round    int    `json:"round,omitempty"`
}

// FinalizeTaskID is the fixed id of an import's finalize task in a round:
// however many workers see the last row resolve, one finalize is queued. An
// import opened again (a late webhook, a retry) finishes in a new round.
func FinalizeTaskID(importID string, round int) string {
	if round == 0 {
		return "finalize:" + importID
	}
	return fmt.Sprintf("finalize:%s:%d", importID, round)
}

// EnqueueFinalize queues an import's finalize for a round, once. The
// finished task is kept for a day, so its id stays taken after it ran.
func EnqueueFinalize(ctx context.Context, q Enqueuer, importID string, round int) error {
	b, err := json.Marshal(FinalizePayload{ImportID: importID, Round: round})
	if err != nil {
		return fmt.Errorf("error encoding the finalize of %s: %w", importID, err)
	}
	return enqueue(ctx, q, asynq.NewTask(TypeFinalize, b),
		asynq.TaskID(FinalizeTaskID(importID, round)),
		asynq.Queue(QueueFinalize),
		asynq.MaxRetry(5),
		asynq.Timeout(30*time.Minute),
		asynq.Retention(24*time.Hour))
}

// Finalize handles import:finalize: it writes the report and marks the import
// finished. Running it twice writes the same report twice.
func (fin *Finishing) Finalize(ctx context.Context, p FinalizePayload) error {
	imp, err := fin.store.Import(ctx, p.ImportID)
	if errors.Is(err, importer.ErrImportNotFound) {
		return nil // gone from Redis: nothing to report
	}
	if err != nil {
		return err
	}
	if imp.Finished() || imp.Round != p.Round {
		return nil // written already, or a later round will write it
	}
	dir, err := fin.writeReport(ctx, imp)
	if err != nil {
		return fmt.Errorf("error writing the report of %s: %w", p.ImportID, err)
	}
	if err := fin.store.Finish(ctx, p.ImportID, time.Now()); err != nil {
		return err
	}
	fin.finished(ctx, imp, dir)
	fin.log.InfoContext(ctx, "import finished", "import_id", p.ImportID, "report", dir)
	return nil
}

// finished follows an import's end: its transient failures are queued to
// be retried (a schedule's retry_transient), its scheduled file is filed
// once no retry follows, and its targets are told how it went (once per
// round: the event's id is fixed).
func (fin *Finishing) finished(ctx context.Context, imp importer.Import, reportDir string) {
	p, err := fin.store.Progress(ctx, imp.ID)
	if err != nil {
		fin.log.WarnContext(ctx, "cannot read how an import ended: no retry by itself, no notification", "import_id", imp.ID, "error", err)
		fin.fileDone(ctx, imp, reportDir)
		return
	}
	retry := ""
	if importer.FineRows(p.Counts) < p.Total {
		retry = fin.scheduleTransientRetry(ctx, imp)
	}
	if retry == "" {
		fin.fileDone(ctx, imp, reportDir)
	}
	fin.announceImport(ctx, imp, importer.FinishedEvent(p), retry)
}
