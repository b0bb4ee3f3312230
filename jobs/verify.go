package jobs

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/propexo-importer/importer/importer"
)

// noRecordID is the note of a write that succeeded without naming its
// record, as the API does for some PMS.
const noRecordID = "the API named no record for this write (created_record_id null, as for some PMS); the resident shows at the PMS's next sync"

// verifyWrite reads back the resident of a write that succeeded (--verify).
// created_record_id is "not a complete solution", say the docs: it may be
// null, or the id of another object the job made. So a record id that does
// not read back as a resident is no failure by itself: the resident is
// looked up by its key (email, else name and date of birth), and the row
// takes the record found. Found neither way, the cache may not show the
// write yet: the read-back is tried again once the vendor's cache lag has
// passed; only then does the row fail record_gone (its write happened: it
// is followed again by 'importer retry', never sent again). A vendor whose
// records show only after a sync cannot be verified now: the row succeeds
// with a note saying what was checked.
func (rw *RowWork) verifyWrite(ctx context.Context, p CheckPayload, recordID string) error {
	since := p.VerifySince
	if since.IsZero() {
		since = time.Now().UTC()
	}
	result := importer.RowResult{Row: p.Row, Line: p.Line, JobID: p.JobID, Outcome: importer.Succeeded, RecordID: recordID}
	checked := "created_record_id was null"
	if recordID != "" {
		if !p.VerifySince.IsZero() {
			if err := rw.take(ctx, p.ImportID, 1); err != nil {
				return err
			}
		}
		_, err := rw.api.GetResident(ctx, recordID)
		rw.countRequest(ctx, p.ImportID, importer.EndpointGetResident, err)
		if err == nil {
			return rw.resolveJob(ctx, p.ImportID, result)
		}
		if kind, _ := importer.ErrorKindOf(err); kind != importer.KindNotFound {
			return rw.checkFailed(ctx, p, err)
		}
		checked = fmt.Sprintf("record %s did not read back as a resident", recordID)
	}
	if p.Lookup != nil && (p.Lookup.Email != "" || p.Lookup.FirstName != "" && p.Lookup.LastName != "") {
		matches, err := rw.lookUp(ctx, p.ImportID, *p.Lookup)
		if err != nil {
			return rw.checkFailed(ctx, p, err)
		}
		switch {
		case len(matches) == 1:
			result.RecordID = matches[0].ID
			if recordID != matches[0].ID {
				result.Error = fmt.Sprintf("%s; found by %s as %s", checked, lookupKey(*p.Lookup), matches[0].ID)
			}
			return rw.resolveJob(ctx, p.ImportID, result)
		case len(matches) > 1:
			result.RecordID = ""
			result.Error = fmt.Sprintf("%s, and %d residents match by %s: not verified", checked, len(matches), lookupKey(*p.Lookup))
			return rw.resolveJob(ctx, p.ImportID, result)
		}
		checked += ", nor found by " + lookupKey(*p.Lookup)
	}
	lag := rw.cfg.CacheLag.For(string(p.Vendor))
	switch {
	case lag == importer.UntilSync:
		result.RecordID = ""
		result.Error = fmt.Sprintf("not verified: %s, and this PMS's records show in the API only after its next sync", checked)
		return rw.resolveJob(ctx, p.ImportID, result)
	case time.Since(since) < lag:
		next := p
		next.Check, next.VerifySince, next.RecordID = p.Check+1, since, recordID
		if moved, err := rw.advance(ctx, p, next.Check); err != nil || !moved {
			return err
		}
		task, opts, err := NewCheckTask(next, time.Until(since.Add(lag)), rw.cfg.MaxRetry)
		if err != nil {
			return err
		}
		return rw.enqueue(ctx, task, opts...)
	}
	result.Outcome, result.RecordID, result.ErrorCode = importer.Failed, recordID, importer.CodeRecordGone
	result.Error = fmt.Sprintf("the write succeeded but its resident cannot be read back: %s (cache lag %v allowed)", checked, lag)
	return rw.resolveJob(ctx, p.ImportID, result)
}

// lookupKey says what a lookup searched by.
func lookupKey(q importer.ResidentQuery) string {
	if q.Email != "" {
		return "email"
	}
	return "name and date of birth"
}

// lookUp finds the residents that match q (by email, else by name and date
// of birth), taking its request from the rate limit; a wait for the rate
// limit comes back as a waitError.
func (rw *RowWork) lookUp(ctx context.Context, importID string, q importer.ResidentQuery) ([]importer.ResidentRecord, error) {
	if err := rw.take(ctx, importID, 1); err != nil {
		return nil, err
	}
	tallied, sent := importer.WithRequestTally(ctx)
	found, err := rw.api.FindResidents(tallied, q)
	// The look-up's other pages or spellings count too, in the same round
	// trip.
	more := slices.Repeat([]string{importer.StatRequests(importer.EndpointListResidents)}, max(sent()-1, 0))
	rw.countRequest(ctx, importID, importer.EndpointListResidents, err, more...)
	if err != nil {
		return nil, err
	}
	var matches []importer.ResidentRecord
	for _, rec := range found {
		if q.Matches(rec) {
			matches = append(matches, rec)
		}
	}
	return matches, nil
}
