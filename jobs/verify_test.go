package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/internal/sandbox"
	"github.com/propexo-importer/importer/internal/sandboxtest"
	"github.com/propexo-importer/importer/jobs"
)

// --verify under what the documents leave open: created_record_id null or
// another object's id, and a cache that shows the record only after a lag
// (or after a sync). The resident is read back by its key once the id
// fails, after the lag when it is not there yet; no row fails for what the
// API cannot promise, and nothing is sent twice.
func TestVerifyUnderTheDocumentedUncertainty(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		recordID  string
		lag       importer.CacheLag
		wantID    bool
		wantNote  string
		minChecks int
	}{
		{name: "record id of a resident", recordID: sandbox.RecordResident, wantID: true},
		{name: "record id null", recordID: sandbox.RecordNull, wantID: true, wantNote: "created_record_id was null; found by email"},
		{name: "record id of another object", recordID: sandbox.RecordOther, wantID: true, wantNote: "did not read back as a resident; found by email"},
		{name: "cache lag", recordID: sandbox.RecordResident, lag: importer.CacheLag{Default: 2 * time.Second}, wantID: true, minChecks: 2},
		{name: "shown after a sync", recordID: sandbox.RecordNull, lag: importer.CacheLag{Default: importer.UntilSync}, wantNote: "not verified: created_record_id was null, nor found by email, and this PMS's records show in the API only after its next sync"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			lat, _ := sandbox.ParseLatency("fixed:0s")
			sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, CacheLag: tt.lag, Variants: sandbox.Variants{CreatedRecordID: tt.recordID}})
			api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
			e := envOn(t, redistestClient(t))
			h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second, CacheLag: tt.lag})
			serve(t, e.rdb, h, 1, 10)
			const rows = 6
			imp := e.newImport(t, "imp-verify", -1, importer.Options{Verify: true})
			if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
				t.Fatal(err)
			}
			waitFinished(t, e.store, "imp-verify", 30*time.Second)
			for row := 1; row <= rows; row++ {
				r := e.result(t, "imp-verify", row)
				if r.Outcome != importer.Succeeded || (r.RecordID != "") != tt.wantID || !strings.Contains(r.Error, tt.wantNote) {
					t.Errorf("row %d = %+v; want succeeded, record id %v, note %q", row, r, tt.wantID, tt.wantNote)
				}
				if r.RecordID != "" {
					if _, err := api.GetResident(ctx, r.RecordID); err != nil {
						t.Errorf("row %d: record %s does not read back: %v", row, r.RecordID, err)
					}
				}
			}
			st := sb.Stats()
			if st.Creates != rows {
				t.Errorf("%d creates for %d rows", st.Creates, rows)
			}
			if reads := st.Requests["get_resident"] + st.Requests["list_residents"]; reads < tt.minChecks*rows {
				t.Errorf("%d read-backs for %d rows, want at least %d each (the lag)", reads, rows, tt.minChecks)
			}
		})
	}
}

// Without --verify, a SUCCESS whose created_record_id is null succeeds with
// an empty record id and a note saying why, not a made-up id.
func TestSuccessWithoutARecordIDIsRecordedHonestly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	lat, _ := sandbox.ParseLatency("fixed:0s")
	sb, srv := sandboxtest.Serve(t, sandbox.Config{APIKey: apiKey, Latency: lat, RateLimit: -1, Variants: sandbox.Variants{CreatedRecordID: sandbox.RecordNull}})
	api, _ := propexo.New(propexo.Config{BaseURL: srv.URL, APIKey: apiKey})
	e := envOn(t, redistestClient(t))
	h := jobs.NewImports(api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: time.Second})
	serve(t, e.rdb, h, 1, 4)
	imp := e.newImport(t, "imp-null-id", -1, importer.Options{Mode: importer.ModeCreate})
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: 3}); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, e.store, "imp-null-id", 20*time.Second)
	for row := 1; row <= 3; row++ {
		r := e.result(t, "imp-null-id", row)
		if r.Outcome != importer.Succeeded || r.RecordID != "" || !strings.Contains(r.Error, "created_record_id null") {
			t.Errorf("row %d = %+v; want succeeded, no record id, a note", row, r)
		}
	}
	if got := sb.Stats().Requests["get_resident"] + sb.Stats().Requests["list_residents"]; got != 0 {
		t.Errorf("%d read-backs without --verify", got)
	}
}
