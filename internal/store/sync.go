package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// This file holds what a sync keeps: the snapshot of the residents in an
// import's scope, the plan of each row to update, and, across imports, the
// ledger of what the importer wrote in each integration.

// SaveSnapshotPage stores page n of the import's snapshot, compressed (zstd
// of its JSON); complete says the listing ended with it.
func (s *Store) SaveSnapshotPage(ctx context.Context, id string, n int, page importer.SnapshotPage, complete bool) error {
	k := keysOf(id)
	b, err := json.Marshal(page)
	if err != nil {
		return fmt.Errorf("error encoding the snapshot of import %s: %w", id, err)
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, k.snapshot, "p"+strconv.Itoa(n), zEncoder.EncodeAll(b, nil), "pages", n+1)
	if complete {
		pipe.HSet(ctx, k.snapshot, "complete", 1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error saving the snapshot of import %s: %w", id, err)
	}
	return nil
}

// SnapshotPages returns the pages of the import's snapshot stored so far,
// in order, and whether its listing is complete.
func (s *Store) SnapshotPages(ctx context.Context, id string) ([]importer.SnapshotPage, bool, error) {
	k := keysOf(id)
	vals, err := s.rdb.HMGet(ctx, k.snapshot, "pages", "complete").Result()
	if err != nil {
		return nil, false, fmt.Errorf("error reading the snapshot of import %s: %w", id, err)
	}
	n, _ := strconv.Atoi(fmt.Sprint(vals[0]))
	complete := vals[1] != nil
	out := make([]importer.SnapshotPage, 0, n)
	for p := range n {
		raw, err := s.rdb.HGet(ctx, k.snapshot, "p"+strconv.Itoa(p)).Bytes()
		if err != nil {
			return nil, false, fmt.Errorf("error reading the snapshot of import %s: %w", id, err)
		}
		b, err := zDecoder.DecodeAll(raw, nil)
		if err != nil {
			return nil, false, fmt.Errorf("error decoding the snapshot of import %s: %w", id, err)
		}
		var page importer.SnapshotPage
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, false, fmt.Errorf("error decoding the snapshot of import %s: %w", id, err)
		}
		out = append(out, page)
	}
	return out, complete, nil
}

// SavePlans records the update each row is to send. A row planned before
// keeps its first plan: a worker that dies between the plan and the write
// cannot turn an update into a create on its next try.
func (s *Store) SavePlans(ctx context.Context, id string, plans map[int]importer.Update) error {
	if len(plans) == 0 {
		return nil
	}
	k := keysOf(id)
	pipe := s.rdb.Pipeline()
	for row, u := range plans {
		b, err := json.Marshal(u)
		if err != nil {
			return fmt.Errorf("error encoding the plan of row %d: %w", row, err)
		}
		pipe.HSetNX(ctx, k.plan, strconv.Itoa(row), b)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error saving the plan of import %s: %w", id, err)
	}
	return nil
}

// Plans returns the planned updates of rows; a row to create (or of an
// import that is not a sync) has none.
func (s *Store) Plans(ctx context.Context, id string, rows []int) (map[int]importer.Update, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	fields := make([]string, len(rows))
	for i, r := range rows {
		fields[i] = strconv.Itoa(r)
	}
	vals, err := s.rdb.HMGet(ctx, keysOf(id).plan, fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("error reading the plan of import %s: %w", id, err)
	}
	out := map[int]importer.Update{}
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		var u importer.Update
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			return nil, fmt.Errorf("error decoding the plan of row %d: %w", rows[i], err)
		}
		out[rows[i]] = u
	}
	return out, nil
}

// SetStats sets counters of an import to the values given (a plan's
// counts, which a plan done again sets alike).
func (s *Store) SetStats(ctx context.Context, id string, values map[string]int) error {
	if len(values) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(values))
	for k, v := range values {
		args = append(args, k, v)
	}
	if err := s.rdb.HSet(ctx, keysOf(id).stats, args...).Err(); err != nil {
		return fmt.Errorf("error saving the counters of import %s: %w", id, err)
	}
	return nil
}

// A ledger entry is stored compactly, one per resident for a year or
// more: "<record id> <hash of the fields sent> <unix seconds>".
// encodeLedgerEntry writes an entry as "id sent at blind as_of" (times in
// Unix seconds; "-" for no blind hash, 0 for no roster time). Entries
// written before blind and as_of were kept have the first three only.
func encodeLedgerEntry(e importer.LedgerEntry) string {
	blind, asOf := e.Blind, int64(0)
	if blind == "" {
		blind = "-"
	}
	if !e.AsOf.IsZero() {
		asOf = e.AsOf.Unix()
	}
	return e.RecordID + " " + e.Sent + " " + strconv.FormatInt(e.At.Unix(), 10) + " " + blind + " " + strconv.FormatInt(asOf, 10)
}

func decodeLedgerEntry(raw string) (importer.LedgerEntry, bool) {
	parts := strings.Split(raw, " ")
	if (len(parts) != 3 && len(parts) != 5) || parts[0] == "" {
		return importer.LedgerEntry{}, false
	}
	secs, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return importer.LedgerEntry{}, false
	}
	e := importer.LedgerEntry{RecordID: parts[0], Sent: parts[1], At: time.Unix(secs, 0).UTC()}
	if len(parts) == 5 {
		if parts[3] != "-" {
			e.Blind = parts[3]
		}
		asOf, err := strconv.ParseInt(parts[4], 10, 64)
		if err != nil {
			return importer.LedgerEntry{}, false
		}
		if asOf != 0 {
			e.AsOf = time.Unix(asOf, 0).UTC()
		}
	}
	return e, true
}

// ledgerKey is the ledger of one integration: a hash of hashed match keys
// (importer.LedgerKey) to what the importer wrote.
func ledgerKey(integrationID string) string { return "importer:ledger:{" + integrationID + "}" }

// Ledger returns what the importer remembers of match keys in an
// integration, written within the retention; keys are importer.LedgerKey's.
func (s *Store) Ledger(ctx context.Context, integrationID string, keys []string, retention time.Duration) (map[string]importer.LedgerEntry, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, ledgerKey(integrationID), keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("error reading the ledger of integration %s: %w", integrationID, err)
	}
	out := map[string]importer.LedgerEntry{}
	oldest := time.Now().Add(-retention)
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		e, ok := decodeLedgerEntry(raw)
		if !ok || (retention > 0 && e.At.Before(oldest)) {
			continue // unreadable or past its retention: as if unknown
		}
		out[keys[i]] = e
	}
	return out, nil
}

// RecordLedger remembers what the importer wrote in an integration, by
// hashed match key, and keeps the integration's ledger for retention after
// its latest write (entries older than that are ignored when read).
func (s *Store) RecordLedger(ctx context.Context, integrationID string, entries map[string]importer.LedgerEntry, retention time.Duration) error {
	if len(entries) == 0 {
		return nil
	}
	key := ledgerKey(integrationID)
	args := make([]any, 0, 2*len(entries))
	for k, e := range entries {
		args = append(args, k, encodeLedgerEntry(e))
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, key, args...)
	if retention > 0 {
		pipe.Expire(ctx, key, retention)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error saving the ledger of integration %s: %w", integrationID, err)
	}
	return nil
}
