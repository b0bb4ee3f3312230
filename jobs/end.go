package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// This file holds how imports finish outside the task handlers: the
// report written on a command's machine, or the import ended where its
// last row resolved.

// ErrFinished is returned for an operation an import that has finished
// cannot take (a cancel).
var ErrFinished = errors.New("the import has already finished")

// errNoReportFolder is returned by the operations that write a report in a
// process that has no report folder of its own (the dashboard).
var errNoReportFolder = errors.New("this process has no report folder: the workers write the reports")

// endHere ends an import whose last row has its outcome: this process
// writes the report when it has a report folder; else the workers do.
func (fin *Finishing) endHere(ctx context.Context, id string) error {
	if fin.reports == nil {
		return fin.finalize(ctx, id)
	}
	_, _, err := fin.Finish(ctx, id)
	return err
}

// Finish ends an import every row of which has its outcome, when no worker
// did (none is running, or its finalize failed): it writes the report into
// this process's report folder and marks the import finished. done is false
// for an import that still has open rows; for one finished already, Finish
// only says where its report is.
func (fin *Finishing) Finish(ctx context.Context, id string) (dir string, done bool, err error) {
	imp, err := fin.store.Import(ctx, id)
	if err != nil {
		return "", false, err
	}
	if imp.Finished() {
		dir, err := fin.EnsureReport(ctx, imp)
		return dir, true, err
	}
	p, err := fin.store.Progress(ctx, id)
	if err != nil || !p.Done() {
		return "", false, err
	}
	if fin.reports == nil {
		return "", false, errNoReportFolder
	}
	if dir, err = fin.writeReport(ctx, imp); err != nil {
		return "", false, err
	}
	if err := fin.store.Finish(ctx, id, time.Now()); err != nil {
		return "", false, err
	}
	fin.finished(ctx, imp, dir)
	return dir, true, nil
}

// EnsureReport makes sure this process's report folder holds the report of
// the import's last round — a worker elsewhere wrote it into its own
// folder — and returns the folder.
func (fin *Finishing) EnsureReport(ctx context.Context, imp importer.Import) (string, error) {
	if fin.reports == nil {
		return "", errNoReportFolder
	}
	if dir, current := fin.reports.Written(imp); current {
		return dir, nil
	}
	return fin.writeReport(ctx, imp)
}

// Report writes an import's report as it stands (rows without an outcome
// show as pending) into this process's report folder. An import every row of
// which has its outcome, that no worker finished (its folder could not be
// written, say), is finished by it: finished tells so.
func (fin *Finishing) Report(ctx context.Context, id string) (dir string, finished bool, err error) {
	imp, err := fin.store.Import(ctx, id)
	if err != nil {
		return "", false, err
	}
	if !imp.ExpiresAt.IsZero() && time.Now().After(imp.ExpiresAt) {
		return "", false, &RowsExpiredError{Import: imp}
	}
	if fin.reports == nil {
		return "", false, errNoReportFolder
	}
	if dir, err = fin.writeReport(ctx, imp); err != nil {
		return "", false, err
	}
	if imp.Finished() {
		return dir, false, nil
	}
	p, err := fin.store.Progress(ctx, id)
	if err != nil || !p.Done() {
		return dir, false, err
	}
	if err := fin.store.Finish(ctx, id, time.Now()); err != nil {
		return dir, false, err
	}
	fin.finished(ctx, imp, dir)
	return dir, true, nil
}
