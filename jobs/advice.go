package jobs

import (
	"cmp"
	"fmt"
	"iter"
	"slices"

	"github.com/propexo-importer/importer/importer"
)

// Review is what an import's rows say a person should look at and do next.
type Review struct {
	// TopErrors are the most frequent errors of the rows that did not
	// succeed, most frequent first.
	TopErrors []ErrorCount
	// NextSteps are the commands or checks that move the import on, in
	// the order to take them.
	NextSteps []string
}

// ErrorCount is an error of some rows: its code, its message and how many
// rows have it.
type ErrorCount struct {
	Code, Error string
	Rows        int
}

// topErrors is how many errors a review names.
const topErrors = 5

// ReviewImport reads an import's rows and says what is left to do: the
// commands that try rows again, the rows to fix and send again, the rows to
// check by hand. failedCSV is where the import's failed.csv is, for the
// sentences; lasting is false when the import's state ends with this
// process (the in-process Redis), so nothing can be retried later.
func ReviewImport(imp importer.Import, p importer.Progress, rows iter.Seq2[importer.ReportRow, error], failedCSV string, lasting bool) (Review, error) {
	var rev Review
	switch imp.State() {
	case "stopped":
		rev.NextSteps = append(rev.NextSteps, fmt.Sprintf("the import stopped (%s)", imp.Stopped))
		return rev, nil
	case "running", "cancelling":
		rev.NextSteps = append(rev.NextSteps, fmt.Sprintf("wait for it: run the same command again, or 'importer status %s --watch'", imp.ID))
	}
	errs := map[ErrorCount]int{}
	var retryable, inDoubt, resend, timedOut int
	for row, err := range rows {
		if err != nil {
			return rev, err
		}
		r := row.Result
		if r.Outcome == "" || r.Outcome.Fine() {
			continue
		}
		msg := r.Error
		if len(msg) > 120 {
			msg = msg[:117] + "..."
		}
		errs[ErrorCount{Code: r.ErrorCode, Error: msg}]++
		switch {
		case Retryable(r):
			retryable++
		case r.ErrorCode == importer.CodeInDoubt:
			inDoubt++
		case r.SafeToResend():
			resend++
		case r.Outcome == importer.TimedOut:
			timedOut++
		}
	}
	for e, n := range errs {
		e.Rows = n
		rev.TopErrors = append(rev.TopErrors, e)
	}
	slices.SortFunc(rev.TopErrors, func(a, b ErrorCount) int {
		return cmp.Or(cmp.Compare(b.Rows, a.Rows), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Error, b.Error))
	})
	rev.TopErrors = rev.TopErrors[:min(len(rev.TopErrors), topErrors)]
	if imp.Finished() {
		switch {
		case retryable > 0 && lasting:
			rev.NextSteps = append(rev.NextSteps, fmt.Sprintf("%s failed for reasons worth another try (a PMS outage, a status that could not be read): importer retry %s", nRows(retryable), imp.ID))
		case retryable > 0:
			rev.NextSteps = append(rev.NextSteps, fmt.Sprintf("%s failed for reasons worth another try; set REDIS_URL, so that an import's state outlasts its run, to retry such rows later with importer retry", nRows(retryable)))
		}
		if resend > 0 {
			rev.NextSteps = append(rev.NextSteps, fmt.Sprintf("%s can be fixed and sent again: correct them in %s, then importer run that file", nRows(resend), failedCSV))
		}
		if inDoubt > 0 {
			rev.NextSteps = append(rev.NextSteps, fmt.Sprintf("%s in doubt (the create may have reached the API): check them in the PMS, or once it has synced, importer retry --in-doubt %s", nRows(inDoubt), imp.ID))
		}
		if timedOut > 0 {
			rev.NextSteps = append(rev.NextSteps, fmt.Sprintf("%s timed out, its write still PENDING at the deadline: follow it up by its job id in results.csv", nRows(timedOut)))
		}
	}
	return rev, nil
}

// nRows says a number of rows: "1 row", "3 rows".
func nRows(n int) string {
	if n == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}
