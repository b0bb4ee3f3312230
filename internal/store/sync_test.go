package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/redistest"
	"github.com/propexo-importer/importer/internal/store"
)

// A snapshot read back from Redis has every field a match needs, x_id and
// the time of the last change included, and says whether its listing
// ended.
func TestSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	at := time.Date(2026, 11, 1, 2, 3, 4, 0, time.UTC)
	rec := importer.ResidentRecord{ID: "res_1", UpdatedAt: at, Resident: importer.Resident{IntegrationID: "int_1", XID: "100001",
		FirstName: "Ada", LastName: "Lovelace", Email1: "ada@example.com", DateOfBirth: "1985-12-10T00:00:00Z", Phone1: "555-0100"}}
	scope := importer.ListScope{IntegrationID: "int_1"}
	if err := s.SaveSnapshotPage(ctx, "imp", 0, importer.SnapshotPage{Scope: scope, More: true, Records: []importer.ResidentRecord{rec}}, false); err != nil {
		t.Fatal(err)
	}
	pages, complete, err := s.SnapshotPages(ctx, "imp")
	if err != nil || complete || len(pages) != 1 {
		t.Fatalf("after one page of two: %d pages, complete %v, %v", len(pages), complete, err)
	}
	if err := s.SaveSnapshotPage(ctx, "imp", 1, importer.SnapshotPage{Scope: scope, Offset: 1}, true); err != nil {
		t.Fatal(err)
	}
	pages, complete, err = s.SnapshotPages(ctx, "imp")
	if err != nil || !complete || len(pages) != 2 {
		t.Fatalf("after the last page: %d pages, complete %v, %v", len(pages), complete, err)
	}
	if got := pages[0].Records[0]; got != rec {
		t.Errorf("read back %+v, want %+v", got, rec)
	}
}

// The ledger keeps a planned row's first plan, and forgets what is past
// its retention.
func TestPlansKeepTheFirstAndTheLedgerItsRetention(t *testing.T) {
	ctx := context.Background()
	s := store.New(redistest.Client(t))
	if err := s.SavePlans(ctx, "imp", map[int]importer.Update{1: {RecordID: "res_a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SavePlans(ctx, "imp", map[int]importer.Update{1: {RecordID: "res_b"}, 2: {RecordID: "res_c"}}); err != nil {
		t.Fatal(err)
	}
	plans, err := s.Plans(ctx, "imp", []int{1, 2, 3})
	if err != nil || plans[1].RecordID != "res_a" || plans[2].RecordID != "res_c" || len(plans) != 2 {
		t.Errorf("plans = %+v, %v; want row 1's first plan kept", plans, err)
	}

	old := importer.LedgerEntry{RecordID: "res_old", Sent: "x", At: time.Now().Add(-48 * time.Hour)}
	fresh := importer.LedgerEntry{RecordID: "res_new", Sent: "y", At: time.Now().UTC().Truncate(time.Second)}
	if err := s.RecordLedger(ctx, "int_1", map[string]importer.LedgerEntry{"k_old": old, "k_new": fresh}, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.Ledger(ctx, "int_1", []string{"k_old", "k_new", "k_none"}, 24*time.Hour)
	if err != nil || len(got) != 1 || got["k_new"] != fresh {
		t.Errorf("ledger = %+v, %v; want only the entry within a day", got, err)
	}
}

// A ledger entry keeps every field it has: the blind hash (else a field no
// read shows is sent again every night) and the roster's time (else an
// older roster overwrites a newer one); entries written before they were
// kept are still read.
func TestTheLedgerKeepsTheBlindHashAndTheRostersTime(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s := store.New(rdb)
	at := time.Now().UTC().Truncate(time.Second)
	full := importer.LedgerEntry{RecordID: "res_1", Sent: "aa", Blind: "bb", At: at, AsOf: at.Add(-time.Hour)}
	bare := importer.LedgerEntry{RecordID: "res_2", Sent: "cc", At: at}
	if err := s.RecordLedger(ctx, "int_1", map[string]importer.LedgerEntry{"k1": full, "k2": bare}, 0); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, "importer:ledger:{int_1}", "k3", "res_3 dd "+strconv.FormatInt(at.Unix(), 10)).Err(); err != nil {
		t.Fatal(err) // as written before
	}
	got, err := s.Ledger(ctx, "int_1", []string{"k1", "k2", "k3"}, 0)
	if err != nil || got["k1"] != full || got["k2"] != bare || got["k3"] != (importer.LedgerEntry{RecordID: "res_3", Sent: "dd", At: at}) {
		t.Errorf("ledger = %+v, %v; want %+v, %+v and the older entry", got, err, full, bare)
	}
}
