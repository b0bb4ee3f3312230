package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/propexo-importer/importer/importer"
)

// notifyTargetsKey holds the addresses of the notification targets, by id:
// imports, schedules and task payloads name a target by its id only, since
// its address may hold a secret (a Slack webhook URL does).
const notifyTargetsKey = "importer:notify-targets"

// SaveNotifyTarget keeps a notification target's address under its id.
func (s *Store) SaveNotifyTarget(ctx context.Context, id, address string) error {
	if err := s.rdb.HSet(ctx, notifyTargetsKey, id, address).Err(); err != nil {
		return fmt.Errorf("error saving a notification target: %w", err)
	}
	return nil
}

// NotifyAddress returns the address of a notification target; ok is false
// when none is kept under the id.
func (s *Store) NotifyAddress(ctx context.Context, id string) (address string, ok bool, err error) {
	address, err = s.rdb.HGet(ctx, notifyTargetsKey, id).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("error reading a notification target: %w", err)
	}
	return address, true, nil
}

// lastFiringsKey holds each schedule's last firing; scheduleImportsKey, a
// schedule's imports, newest first.
const lastFiringsKey = "importer:schedules:last-firing"

func scheduleImportsKey(schedule string) string { return "importer:schedule-imports:" + schedule }

// scheduleImportsKept is how many of a schedule's imports are remembered.
const scheduleImportsKept = 50

// RecordFiring records what a schedule's firing did: it becomes the
// schedule's last firing (a retry of the same firing replaces it), and its
// imports join the schedule's.
func (s *Store) RecordFiring(ctx context.Context, schedule string, f importer.Firing) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("error encoding a firing of %s: %w", schedule, err)
	}
	// Two keys in two cluster slots: pipelined, not one transaction.
	pipe := s.rdb.Pipeline()
	pipe.HSet(ctx, lastFiringsKey, schedule, b)
	for _, id := range f.Imports {
		pipe.ZAdd(ctx, scheduleImportsKey(schedule), redis.Z{Score: float64(f.At.UnixMilli()), Member: id})
	}
	pipe.ZRemRangeByRank(ctx, scheduleImportsKey(schedule), 0, -scheduleImportsKept-1)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error recording a firing of %s: %w", schedule, err)
	}
	return nil
}

// ScheduleHistory returns a schedule's last firing (nil before the first)
// and its latest imports, newest first.
func (s *Store) ScheduleHistory(ctx context.Context, schedule string) (*importer.Firing, []string, error) {
	pipe := s.rdb.Pipeline()
	last := pipe.HGet(ctx, lastFiringsKey, schedule)
	imports := pipe.ZRevRange(ctx, scheduleImportsKey(schedule), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("error reading the firings of %s: %w", schedule, err)
	}
	var f *importer.Firing
	if raw, err := last.Result(); err == nil {
		f = &importer.Firing{}
		if err := json.Unmarshal([]byte(raw), f); err != nil {
			return nil, nil, fmt.Errorf("error decoding the last firing of %s: %w", schedule, err)
		}
	}
	return f, imports.Val(), nil
}
