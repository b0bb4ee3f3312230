package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/propexo-importer/importer/importer"
)

// jsonArray reads a JSON array of objects one element at a time.
func (rd *Reader) jsonArray(r io.Reader) (func() (importer.Row, error), error) {
	lines := &lineCounter{r: r}
	// The decoder reads ahead of the element it decodes: give it room.
	bounded := &boundedReader{r: lines, max: hardRecordBytes(rd.limits) + 1<<20}
	dec := json.NewDecoder(bounded)
	dec.UseNumber()
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, ErrEmpty
	}
	if err != nil {
		return nil, &SyntaxError{Line: lines.lineAt(dec.InputOffset()), Err: err}
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, &SyntaxError{Line: 1, Err: errors.New("a JSON file must hold an array of resident objects; for one object a line use --format ndjson")}
	}
	done := false
	return func() (importer.Row, error) {
		if done {
			return importer.Row{}, io.EOF
		}
		if !dec.More() {
			done = true
			if _, err := dec.Token(); err != nil { // the closing ']'
				return importer.Row{}, &SyntaxError{Line: lines.lineAt(dec.InputOffset()), Err: err}
			}
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return importer.Row{}, &SyntaxError{Line: lines.lineAt(dec.InputOffset()), Err: errors.New("there is more after the JSON array")}
			}
			return importer.Row{}, io.EOF
		}
		var raw json.RawMessage
		bounded.mark = dec.InputOffset()
		if err := dec.Decode(&raw); err != nil {
			done = true
			at := dec.InputOffset()
			if errors.Is(err, errRecordTooLong) {
				return importer.Row{}, rd.tooLong(lines.lineAt(at))
			}
			var syn *json.SyntaxError
			if errors.As(err, &syn) && syn.Offset > at {
				at = syn.Offset - 1
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				at = lines.read
				err = errors.New("the file ends before the JSON array is closed")
			}
			return importer.Row{}, &SyntaxError{Line: lines.lineAt(at), Err: err}
		}
		start := dec.InputOffset() - int64(len(raw))
		return rd.object(lines.lineAt(start), raw), nil
	}, nil
}

// ndjson reads one JSON object a line; blank lines are skipped. A line
// longer than MaxRecordBytes is an invalid row, skipped without being held
// in memory.
func (rd *Reader) ndjson(r io.Reader) (func() (importer.Row, error), error) {
	br := bufio.NewReader(r)
	line := 0
	eof := false
	var text []byte
	return func() (importer.Row, error) {
		for !eof {
			var long int
			var err error
			text, long, err = readLine(br, text[:0], rd.limits.MaxRecordBytes)
			if errors.Is(err, io.EOF) {
				eof = true
			} else if err != nil {
				return importer.Row{}, &SyntaxError{Line: line + 1, Err: err}
			}
			if len(text) == 0 && long == 0 && eof {
				break
			}
			line++
			if long > 0 {
				return importer.Row{Line: line, Err: fmt.Errorf("line %d: the record is %d bytes long; at most %d are read (--max-record-bytes)", line, long, rd.limits.MaxRecordBytes)}, nil
			}
			text = bytes.TrimSpace(text)
			if len(text) == 0 {
				continue
			}
			return rd.object(line, text), nil
		}
		return importer.Row{}, io.EOF
	}, nil
}

// readLine reads one line into buf, holding no more than max bytes of it
// (and its line end). A longer line is read to its end and dropped: long is
// then its length; it is 0 for a line kept.
func readLine(br *bufio.Reader, buf []byte, max int) (line []byte, long int, err error) {
	over, total := false, 0
	for {
		chunk, err := br.ReadSlice('\n')
		total += len(chunk)
		if !over && len(buf)+len(chunk) <= max+2 {
			buf = append(buf, chunk...)
		} else {
			over, buf = true, buf[:0]
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if over {
			return buf, total, err
		}
		return buf, 0, err
	}
}

// object turns one JSON value into a row. Keys keep the object's order;
// strings are taken as they are, numbers and booleans as written, null as
// empty, and nested values as compact JSON text.
func (rd *Reader) object(line int, raw []byte) importer.Row {
	if len(raw) > rd.limits.MaxRecordBytes {
		return importer.Row{Line: line, Err: fmt.Errorf("line %d: the record is %d bytes long; at most %d are read (--max-record-bytes)", line, len(raw), rd.limits.MaxRecordBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return importer.Row{Line: line, Err: fmt.Errorf("line %d: not valid JSON: %v", line, err)}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return importer.Row{Line: line, Err: fmt.Errorf("line %d: not a JSON object", line)}
	}
	var positions []int
	var values []string
	seen := map[string]bool{}
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return importer.Row{Line: line, Err: fmt.Errorf("line %d: not valid JSON: %v", line, err)}
		}
		key, _ := keyTok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return importer.Row{Line: line, Err: fmt.Errorf("line %d: not valid JSON: %v", line, err)}
		}
		key = strings.TrimSpace(key)
		if seen[key] {
			continue // encoding/json keeps the last; a person reads the first
		}
		seen[key] = true
		if !rd.cols.has(key) && len(rd.cols.names) >= rd.limits.MaxColumns {
			// Each new key is a column of the report: bound them for
			// the whole file, so the report grows with the input.
			rd.err = &SyntaxError{Line: line, Err: fmt.Errorf("the records bring more than %d different keys; at most %d columns are read (--max-columns)", rd.limits.MaxColumns, rd.limits.MaxColumns)}
			return importer.Row{}
		}
		positions = append(positions, rd.cols.add(key, false))
		values = append(values, jsonText(val))
	}
	if _, err := dec.Token(); err != nil {
		return importer.Row{Line: line, Err: fmt.Errorf("line %d: not valid JSON: %v", line, err)}
	}
	if dec.More() {
		return importer.Row{Line: line, Err: fmt.Errorf("line %d: more than one JSON value", line)}
	}
	names := make([]string, len(positions))
	for i, p := range positions {
		names[i] = rd.cols.names[p]
	}
	if err := checkLimits(rd.limits, names, values); err != nil {
		return importer.Row{Line: line, Err: fmt.Errorf("line %d: %v", line, err)}
	}
	return rd.build(line, positions, values)
}

func jsonText(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0, bytes.Equal(v, []byte("null")):
		return ""
	case v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			return s
		}
	case v[0] == '{' || v[0] == '[':
		var b bytes.Buffer
		if err := json.Compact(&b, v); err == nil {
			return b.String()
		}
	}
	return string(v)
}

// lineCounter remembers where the lines of what it reads start, so that a
// decoder's byte offset can be turned into a line number. It forgets offsets
// once they are behind the decoder, so memory stays small on big files.
type lineCounter struct {
	r        io.Reader
	read     int64
	newlines []int64 // offsets of '\n' not yet passed by lineAt
	passed   int     // newlines before newlines[0]
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			c.newlines = append(c.newlines, c.read+int64(i))
		}
	}
	c.read += int64(n)
	return n, err
}

// lineAt returns the 1-based line of the byte at offset. Offsets must not go
// backwards between calls.
func (c *lineCounter) lineAt(offset int64) int {
	i := 0
	for i < len(c.newlines) && c.newlines[i] < offset {
		i++
	}
	c.passed += i
	c.newlines = c.newlines[i:]
	return c.passed + 1
}
