package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/fetch"
)

// ScheduleStatuses completes schedules (name, cron, inbox, next firing)
// with what their firings did: the last firing, shown stopped when an
// import it started has stopped since, and the schedule's latest imports.
func (sr *Starting) ScheduleStatuses(ctx context.Context, schedules []importer.ScheduleStatus) ([]importer.ScheduleStatus, error) {
	out := make([]importer.ScheduleStatus, len(schedules))
	for i, s := range schedules {
		last, imports, err := sr.store.ScheduleHistory(ctx, s.Name)
		if err != nil {
			return nil, err
		}
		s.Last, s.Imports = last, imports
		if last != nil {
			for _, id := range last.Imports {
				imp, err := sr.store.Import(ctx, id)
				if err == nil && imp.State() == "stopped" {
					stopped := *last
					stopped.Outcome, stopped.Detail = importer.FiringStopped, "import "+id+" stopped: "+imp.Stopped
					s.Last = &stopped
					break
				} else if err != nil && !errors.Is(err, importer.ErrImportNotFound) {
					return nil, err
				}
			}
		}
		out[i] = s
	}
	return out, nil
}

// SchedulerEntries returns the schedules the running schedulers have
// registered with Asynq (each scheduler refreshes its entries while it
// runs), with their next firing, by name.
func SchedulerEntries(inspector *asynq.Inspector) ([]importer.ScheduleStatus, error) {
	entries, err := inspector.SchedulerEntries()
	if err != nil {
		return nil, fmt.Errorf("error listing the schedulers' entries: %w", err)
	}
	byName := map[string]importer.ScheduleStatus{}
	for _, e := range entries {
		if e.Task == nil || e.Task.Type() != TypeScheduledImport {
			continue
		}
		var s ScheduledImport
		if json.Unmarshal(e.Task.Payload(), &s) != nil || s.Name == "" {
			continue
		}
		// Two schedulers (for availability) register the same entry.
		if seen, ok := byName[s.Name]; ok && !seen.Next.IsZero() && seen.Next.Before(e.Next) {
			continue
		}
		byName[s.Name] = importer.ScheduleStatus{Name: s.Name, Cron: strings.TrimSpace(cronOf(s, e.Spec)), Inbox: fetch.Redact(s.Inbox), Next: e.Next}
	}
	out := make([]importer.ScheduleStatus, 0, len(byName))
	for _, s := range byName {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b importer.ScheduleStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// cronOf is an entry's cron as its schedules file wrote it.
func cronOf(s ScheduledImport, spec string) string {
	if s.Cron != "" {
		return s.Cron
	}
	return spec
}
