package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/source"
)

// dryRunImport validates the whole file and prints what would be sent.
func (c *runConfig) dryRunImport(ctx context.Context, p prepared, stdout, stderr io.Writer) error {
	in := p.file
	rows, err := source.OpenFile(in.Path, in.Options.Format, in.Size, source.Options{Limits: in.Limits, Delimiter: in.Options.DelimiterRune(), Mapping: in.Options.Mapping, Sheet: in.Options.Sheet})
	if err != nil {
		return usageError("%s: %v", in.Shown, err)
	}
	defer rows.Close()
	v := importer.NewValidator(in.Options)
	path := in.Options.Vendor.CreatePath()
	var total, bad int
	for {
		row, err := rows.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return usageError("%s: %v", in.Shown, err)
		}
		total++
		if total%1000 == 0 && ctx.Err() != nil {
			return &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted after %d rows of the dry run; nothing was sent", total)}
		}
		res, problems, dupOf := v.Check(row)
		switch {
		case len(problems) > 0:
			bad++
			fmt.Fprintf(stdout, "%s: invalid: %s\n", row.Where(), importer.JoinProblems(problems))
		case dupOf > 0:
			bad++
			fmt.Fprintf(stdout, "%s: duplicate: the same record as row %d\n", row.Where(), dupOf)
		default:
			body, _ := json.Marshal(res.Body())
			fmt.Fprintf(stdout, "%s: POST %s %s\n", row.Where(), path, body)
		}
	}
	fmt.Fprintf(stderr, "dry run of %s (import %s): %s, %d would be sent, %d would not; nothing was sent\n", in.Shown, p.id, plural(total, "row"), total-bad, bad)
	printColumnTable(stderr, rows.Columns(), rows.UnknownColumns(), in.Options.Mapping)
	if ignored := rows.IgnoredColumns(); len(ignored) > 0 {
		fmt.Fprintf(stderr, "columns of an earlier failed.csv left out: %s\n", strings.Join(ignored, ", "))
	}
	if notTaken := p.file.Options.Vendor.NotTaken(rows.Columns(), p.file.Options.Mapping); len(notTaken) > 0 {
		fmt.Fprintf(stderr, "columns %s does not take, not sent (kept in the report): %s\n", p.file.Options.Vendor, strings.Join(notTaken, ", "))
	}
	if unknown := rows.UnknownColumns(); len(unknown) > 0 {
		fmt.Fprintf(stderr, "columns not sent (kept in the report): %s\n", strings.Join(unknown, ", "))
	}
	if bad > 0 {
		return &exitError{code: exitSomeFailed}
	}
	return nil
}

// printColumnTable shows how each column of the file was read: the field
// it fills, or that it is not sent (unknown lists the columns the reader
// mapped to nothing, a field's second column among them).
func printColumnTable(w io.Writer, columns, unknown []string, m *importer.Mapping) {
	how := "the built-in aliases"
	if m != nil {
		how = fmt.Sprintf("the mapping %s (%s) over the built-in aliases", m.Name, m.Hash())
	}
	fmt.Fprintf(w, "columns read with %s:\n", how)
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, col := range columns {
		field, ok := m.FieldFor(col)
		switch {
		case !ok || slices.Contains(unknown, col):
			field = "(not sent)"
		case field == importer.FieldFullName:
			field = "first_name and last_name (split)"
		}
		fmt.Fprintf(tw, "  %s\t→ %s\n", col, field)
	}
	_ = tw.Flush()
}
