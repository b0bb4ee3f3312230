package store

import (
	"encoding/binary"
	"errors"

	"github.com/propexo-importer/importer/importer"
)

// A row's original record is kept compactly, as it takes most of an
// import's memory in Redis: a tag byte, the line, then the values. A record
// whose column names are the file's header, in order (every row of a CSV
// file), is stored as its values only; any other (a JSON object with its
// own keys) as names and values. Lengths are uvarints.
const (
	inputByHeader = 'h'
	inputByName   = 'n'
)

var errBadInput = errors.New("stored record is corrupt")

// appendInput encodes a row's line and columns onto b.
func appendInput(b []byte, row importer.Row, header []string) []byte {
	byHeader := len(row.Columns) == len(header)
	for i := 0; byHeader && i < len(header); i++ {
		byHeader = row.Columns[i].Name == header[i]
	}
	tag := byte(inputByName)
	if byHeader {
		tag = inputByHeader
	}
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(max(row.Line, 0)))
	b = binary.AppendUvarint(b, uint64(len(row.Columns)))
	for _, c := range row.Columns {
		if !byHeader {
			b = binary.AppendUvarint(b, uint64(len(c.Name)))
			b = append(b, c.Name...)
		}
		b = binary.AppendUvarint(b, uint64(len(c.Value)))
		b = append(b, c.Value...)
	}
	return b
}

// decodeInput is the inverse of appendInput.
func decodeInput(b []byte, header []string) (line int, cols []importer.Column, err error) {
	if len(b) == 0 {
		return 0, nil, errBadInput
	}
	tag := b[0]
	if tag != inputByHeader && tag != inputByName {
		return 0, nil, errBadInput
	}
	b = b[1:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	str := func() (string, bool) {
		n, ok := next()
		if !ok || n > uint64(len(b)) {
			return "", false
		}
		s := string(b[:n])
		b = b[n:]
		return s, true
	}
	l, ok := next()
	if !ok {
		return 0, nil, errBadInput
	}
	count, ok := next()
	if !ok || count > uint64(len(b)) || (tag == inputByHeader && count != uint64(len(header))) {
		return 0, nil, errBadInput
	}
	cols = make([]importer.Column, count)
	for i := range cols {
		if tag == inputByName {
			if cols[i].Name, ok = str(); !ok {
				return 0, nil, errBadInput
			}
		} else {
			cols[i].Name = header[i]
		}
		if cols[i].Value, ok = str(); !ok {
			return 0, nil, errBadInput
		}
	}
	if len(b) != 0 {
		return 0, nil, errBadInput
	}
	return int(l), cols, nil
}
