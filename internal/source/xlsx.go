package source

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/propexo-importer/importer/importer"
)

// xlsx reads a sheet of an Excel workbook (the first, or Options.Sheet):
// its header is the first row with two cells or more (the rows above it,
// a title merged across the columns or a date of export, are passed
// over), each row after it a record, and a row's line is the sheet's row
// number. excelize's Rows streams the sheet's
// XML, spooled to a temporary file past excelize's size limit, so a large
// sheet is not held in memory as cells; the workbook's compressed bytes are
// (excelize reads a zip from memory).
//
// Cells are read raw, not through their number format: a rent of 1250 is
// "1250", not "$1,250.00", and a date is Excel's serial number, which a
// date column (date_of_birth) turns into YYYY-MM-DD, whatever format the
// spreadsheet shows it in.
func (rd *Reader) xlsx(r io.Reader, sheet string) (func() (importer.Row, error), error) {
	wb, err := excelize.OpenReader(r, excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, fmt.Errorf("not a readable Excel workbook (.xlsx): %v", err)
	}
	rd.close = wb.Close
	fail := func(err error) (func() (importer.Row, error), error) {
		rd.Close()
		return nil, err
	}
	sheets := wb.GetSheetList()
	if sheet == "" && len(sheets) > 0 {
		sheet = sheets[0]
	}
	if !slices.Contains(sheets, sheet) {
		return fail(fmt.Errorf("the workbook has no sheet %q (it has %s): give one of them with --sheet", sheet, quoteAll(sheets)))
	}
	date1904 := false
	if props, err := wb.GetWorkbookProps(); err == nil && props.Date1904 != nil {
		date1904 = *props.Date1904
	}
	rows, err := wb.Rows(sheet)
	if err != nil {
		return fail(fmt.Errorf("sheet %q: %v", sheet, err))
	}
	// The sheet's rows hold a temporary file open, past excelize's size
	// limit: closed before the workbook removes it.
	rd.close = func() error { return errors.Join(rows.Close(), wb.Close()) }
	line := 0
	next := func() ([]string, error) {
		for rows.Next() {
			line++
			cells, err := rows.Columns()
			if err != nil {
				return nil, &SyntaxError{Line: line, Err: err}
			}
			if !blank(cells) {
				return cells, nil
			}
		}
		if err := rows.Error(); err != nil {
			return nil, &SyntaxError{Line: line, Err: err}
		}
		return nil, io.EOF
	}
	header, err := next()
	for err == nil && filled(header) < 2 {
		header, err = next() // a title above the header
	}
	if errors.Is(err, io.EOF) {
		return fail(fmt.Errorf("sheet %q has no header: no row of two cells or more (the workbook has %s; --sheet picks one)", sheet, quoteAll(sheets)))
	}
	if err != nil {
		return fail(err)
	}
	if len(header) > rd.limits.MaxColumns {
		return fail(&SyntaxError{Line: line, Err: fmt.Errorf("the header has %d columns; at most %d are read (--max-columns)", len(header), rd.limits.MaxColumns)})
	}
	positions := make([]int, len(header))
	for i, name := range header {
		positions[i] = rd.cols.add(strings.TrimSpace(name), true)
	}
	return func() (importer.Row, error) {
		record, err := next()
		if err != nil {
			return importer.Row{}, err
		}
		if err := checkLimits(rd.limits, header, record); err != nil {
			return importer.Row{Line: line, Err: fmt.Errorf("row %d: %v", line, err)}, nil
		}
		for len(positions) < len(record) {
			positions = append(positions, rd.cols.add("", true))
		}
		for i, v := range record {
			if rd.cols.fields[positions[i]] == importer.FieldDateOfBirth {
				record[i] = excelDate(v, date1904)
			}
		}
		row := rd.build(line, positions[:len(record)], record)
		if len(record) > len(header) {
			row.Err = fmt.Errorf("row %d has %d cells, the header has %d", line, len(record), len(header))
		}
		return row, nil
	}, nil
}

// excelDate turns a cell's raw value, when it is Excel's serial number of
// a day, into YYYY-MM-DD; any other value (a date typed as text) is left
// for the validator to judge.
func excelDate(v string, date1904 bool) string {
	serial, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || serial < 1 {
		return v
	}
	t, err := excelize.ExcelDateToTime(serial, date1904)
	if err != nil {
		return v
	}
	return t.Format(time.DateOnly)
}

// filled counts the cells of a row that hold something.
func filled(cells []string) int {
	n := 0
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			n++
		}
	}
	return n
}

func quoteAll(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = strconv.Quote(n)
	}
	return strings.Join(quoted, ", ")
}
