package source

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gocarina/gocsv"

	"github.com/propexo-importer/importer/importer"
)

// csv reads the header and returns the function that reads one record at a
// time. gocsv's SimpleDecoder walks the records; encoding/csv underneath it
// handles quoted commas and newlines and CRLF, and tells each record's line.
func (rd *Reader) csv(r io.Reader) (func() (importer.Row, error), error) {
	// The csv.Reader reads ahead by its buffer's size (4 KiB).
	bounded := &boundedReader{r: r, max: hardRecordBytes(rd.limits) + 64<<10}
	cr := csv.NewReader(bounded)
	cr.Comma = rd.delimiter
	cr.FieldsPerRecord = -1 // a ragged record is a bad row, not a broken file
	dec := gocsv.NewSimpleDecoderFromCSVReader(cr)

	header, err := dec.GetCSVRow()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if errors.Is(err, errRecordTooLong) {
		return nil, rd.tooLong(1)
	}
	if err != nil {
		return nil, csvError(err)
	}
	bounded.mark = cr.InputOffset()
	lastLine := 1
	if len(header) > rd.limits.MaxColumns {
		return nil, &SyntaxError{Line: 1, Err: fmt.Errorf("the header has %d columns; at most %d are read (--max-columns)", len(header), rd.limits.MaxColumns)}
	}
	width := len(header)
	// A failed.csv run again ends with the report's own columns: they are
	// not the file's, and are left out.
	if n := len(importer.FailedColumns); len(header) > n && slices.Equal(trimAll(header[len(header)-n:]), importer.FailedColumns) {
		rd.ignored = importer.FailedColumns
		header = header[:len(header)-n]
	}
	positions := make([]int, len(header))
	for i, name := range header {
		positions[i] = rd.cols.add(strings.TrimSpace(name), true)
	}

	return func() (importer.Row, error) {
		for {
			record, err := dec.GetCSVRow()
			bounded.mark = cr.InputOffset()
			if errors.Is(err, io.EOF) {
				return importer.Row{}, io.EOF
			}
			if errors.Is(err, errRecordTooLong) {
				return importer.Row{}, rd.tooLong(lastLine + 1)
			}
			var perr *csv.ParseError
			if errors.As(err, &perr) {
				// The reader goes on after a bad record; the row is
				// invalid and the rest of the file is still read.
				lastLine = perr.Line
				return importer.Row{Line: perr.StartLine, Err: fmt.Errorf("line %d: %v", perr.Line, perr.Err)}, nil
			}
			if err != nil {
				return importer.Row{}, csvError(err)
			}
			if blank(record) {
				continue
			}
			for i, v := range record {
				record[i] = unneutralize(v)
			}
			line, _ := cr.FieldPos(0)
			lastLine = line
			if err := checkLimits(rd.limits, header, record); err != nil {
				return importer.Row{Line: line, Err: fmt.Errorf("line %d: %v", line, err)}, nil
			}
			fields := record
			if rd.ignored != nil && len(record) == width {
				fields = record[:len(header)]
			}
			for len(positions) < len(fields) {
				positions = append(positions, rd.cols.add("", true))
			}
			row := rd.build(line, positions[:len(fields)], fields)
			if len(record) != width {
				row.Err = fmt.Errorf("the record has %d fields, the header has %d", len(record), width)
			}
			return row, nil
		}
	}, nil
}

func trimAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.TrimSpace(n)
	}
	return out
}

func csvError(err error) error {
	var perr *csv.ParseError
	if errors.As(err, &perr) {
		return &SyntaxError{Line: perr.Line, Err: perr.Err}
	}
	return err
}

// blank reports whether every field of a record is empty, as spreadsheets
// leave at the end of an export (",,,,"). Such records are skipped like
// blank lines.
func blank(record []string) bool {
	for _, f := range record {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// unneutralize takes off the apostrophe that the report puts before a cell a
// spreadsheet would run as a formula, so that failed.csv reads back as the
// values it came from.
func unneutralize(v string) string {
	if len(v) >= 2 && v[0] == '\'' && strings.ContainsRune("=+-@\t\r", rune(v[1])) {
		return v[1:]
	}
	return v
}
