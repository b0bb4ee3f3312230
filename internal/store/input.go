package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"strconv"

	"github.com/klauspost/compress/zstd"

	"github.com/propexo-importer/importer/importer"
)

// The original records take most of an import's memory in Redis, so they
// are stored compactly: inputChunk consecutive rows share one field of the
// input hash, compressed with zstd. Inside a chunk each record is its row's
// offset in the chunk, a tag byte, its line, then its values. A record whose
// column names are the file's header, in order (every row of a CSV file), is
// stored as its values only; any other (a JSON object with its own keys) as
// names and values. Numbers and lengths are uvarints.
const (
	inputChunk    = 100
	inputByHeader = 'h'
	inputByName   = 'n'
)

var errBadInput = errors.New("stored record is corrupt")

var (
	zEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
)

func chunkOf(row int) int { return (row - 1) / inputChunk }

func chunkField(chunk int) string { return "c" + strconv.Itoa(chunk) }

// encodeChunks groups rows by chunk and encodes each chunk. A chunk is
// written whole: the rows given must be every row of each chunk they touch
// (a split stores whole chunks, the file's last one excepted).
func encodeChunks(rows []importer.Row, header []string) (fieldsAndValues []any) {
	sorted := slices.Clone(rows)
	slices.SortFunc(sorted, func(a, b importer.Row) int { return cmp.Compare(a.Number, b.Number) })
	var raw []byte
	for i := 0; i < len(sorted); {
		chunk := chunkOf(sorted[i].Number)
		raw = raw[:0]
		for ; i < len(sorted) && chunkOf(sorted[i].Number) == chunk; i++ {
			raw = appendInput(raw, sorted[i], header)
		}
		fieldsAndValues = append(fieldsAndValues, chunkField(chunk), zEncoder.EncodeAll(raw, nil))
	}
	return fieldsAndValues
}

// appendInput encodes a row's offset in its chunk, line and columns onto b.
func appendInput(b []byte, row importer.Row, header []string) []byte {
	byHeader := len(row.Columns) == len(header)
	for i := 0; byHeader && i < len(header); i++ {
		byHeader = row.Columns[i].Name == header[i]
	}
	b = binary.AppendUvarint(b, uint64((row.Number-1)%inputChunk))
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

// storedRecord is a row's original record as stored.
type storedRecord struct {
	line int
	cols []importer.Column
}

// decodeChunk decodes a stored chunk into its records by offset.
func decodeChunk(compressed []byte, header []string) (map[int]storedRecord, error) {
	raw, err := zDecoder.DecodeAll(compressed, nil)
	if err != nil {
		return nil, errBadInput
	}
	out := make(map[int]storedRecord, inputChunk)
	for len(raw) > 0 {
		var offset int
		var rec storedRecord
		if offset, rec, raw, err = decodeInput(raw, header); err != nil {
			return nil, err
		}
		out[offset] = rec
	}
	return out, nil
}

// decodeInput reads one record that appendInput wrote and returns the rest.
func decodeInput(b []byte, header []string) (offset int, rec storedRecord, rest []byte, err error) {
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
	off, ok := next()
	if !ok || off >= inputChunk || len(b) == 0 {
		return 0, rec, nil, errBadInput
	}
	tag := b[0]
	if tag != inputByHeader && tag != inputByName {
		return 0, rec, nil, errBadInput
	}
	b = b[1:]
	line, ok := next()
	if !ok {
		return 0, rec, nil, errBadInput
	}
	count, ok := next()
	if !ok || count > uint64(len(b)) || (tag == inputByHeader && count != uint64(len(header))) {
		return 0, rec, nil, errBadInput
	}
	rec.line = int(line)
	rec.cols = make([]importer.Column, count)
	for i := range rec.cols {
		if tag == inputByName {
			if rec.cols[i].Name, ok = str(); !ok {
				return 0, rec, nil, errBadInput
			}
		} else {
			rec.cols[i].Name = header[i]
		}
		if rec.cols[i].Value, ok = str(); !ok {
			return 0, rec, nil, errBadInput
		}
	}
	return int(off), rec, b, nil
}
