package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/klauspost/compress/zstd"
	"github.com/redis/go-redis/v9"

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

// InputHeader pins the header against which an import's records are stored
// compactly: the first split's proposal wins, and every later split uses
// the stored one.
func (s *Store) InputHeader(ctx context.Context, id string, proposed []string) ([]string, error) {
	k := keysOf(id)
	b, err := json.Marshal(proposed)
	if err != nil {
		return nil, fmt.Errorf("error encoding the header of import %s: %w", id, err)
	}
	pipe := s.rdb.TxPipeline()
	pipe.HSetNX(ctx, k.meta, "header", b)
	stored := pipe.HGet(ctx, k.meta, "header")
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("error saving the header of import %s: %w", id, err)
	}
	var header []string
	if err := json.Unmarshal([]byte(stored.Val()), &header); err != nil {
		return nil, fmt.Errorf("error decoding the header of import %s: %w", id, err)
	}
	return header, nil
}

func (s *Store) header(ctx context.Context, k keys) ([]string, error) {
	raw, err := s.rdb.HGet(ctx, k.meta, "header").Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var header []string
	err = json.Unmarshal([]byte(raw), &header)
	return header, err
}

// SaveInput stores rows' original records, compactly against the header
// InputHeader returned, for the feed and the report; and it resolves the
// rows that already have their outcome (invalid and duplicate ones), in one
// round trip.
func (s *Store) SaveInput(ctx context.Context, id string, header []string, rows []importer.Row, results []importer.RowResult) error {
	k := keysOf(id)
	pipe := s.rdb.Pipeline()
	if len(rows) > 0 {
		pipe.HSet(ctx, k.input, encodeChunks(rows, header)...)
	}
	for _, r := range results {
		args, err := moveArgs(importer.Move{Row: r.Row, To: importer.PhaseResolved, Result: r})
		if err != nil {
			return err
		}
		moveScript.Eval(ctx, pipe, k.moveKeys(), args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("error saving rows of import %s: %w", id, err)
	}
	return nil
}

// Inputs returns the stored records of rows, with their numbers and lines;
// a row with no stored record comes back with no columns.
func (s *Store) Inputs(ctx context.Context, id string, rows []int) ([]importer.Row, error) {
	k := keysOf(id)
	header, err := s.header(ctx, k)
	if err != nil {
		return nil, fmt.Errorf("error reading the header of import %s: %w", id, err)
	}
	var chunks []int
	for _, r := range rows {
		if c := chunkOf(r); len(chunks) == 0 || !slices.Contains(chunks, c) {
			chunks = append(chunks, c)
		}
	}
	records, err := s.chunks(ctx, k, header, chunks)
	if err != nil {
		return nil, fmt.Errorf("error reading rows of import %s: %w", id, err)
	}
	out := make([]importer.Row, len(rows))
	for i, r := range rows {
		rec := records[chunkOf(r)][(r-1)%inputChunk]
		out[i] = importer.Row{Number: r, Line: rec.line, Columns: rec.cols}
	}
	return out, nil
}

// chunks reads and decodes stored chunks; a chunk not stored is empty.
func (s *Store) chunks(ctx context.Context, k keys, header []string, chunks []int) (map[int]map[int]storedRecord, error) {
	fields := make([]string, len(chunks))
	for i, c := range chunks {
		fields[i] = chunkField(c)
	}
	vals, err := s.rdb.HMGet(ctx, k.input, fields...).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[int]map[int]storedRecord, len(chunks))
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			continue
		}
		recs, err := decodeChunk([]byte(raw), header)
		if err != nil {
			return nil, fmt.Errorf("rows %d-%d: %w", chunks[i]*inputChunk+1, (chunks[i]+1)*inputChunk, err)
		}
		out[chunks[i]] = recs
	}
	return out, nil
}

// SetTotal records that the file has been split: its number of records and
// its columns. It reports whether every row already has an outcome.
func (s *Store) SetTotal(ctx context.Context, id string, total int, columns importer.FileColumns) (bool, error) {
	k := keysOf(id)
	cols, _ := json.Marshal(columns.Names)
	unk, _ := json.Marshal(columns.Unknown)
	ign, _ := json.Marshal(columns.Ignored)
	notTaken, _ := json.Marshal(columns.NotTaken)
	pipe := s.rdb.TxPipeline()
	pipe.HSet(ctx, k.meta, "total", total, "columns", cols, "unknown", unk, "ignored", ign, "not_taken", notTaken)
	resolved := pipe.HGet(ctx, k.counts, "resolved")
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("error saving the size of import %s: %w", id, err)
	}
	n, _ := resolved.Int()
	return n >= total, nil
}
