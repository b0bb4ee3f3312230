package store

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/propexo-importer/importer/importer"
)

func TestChunksRoundTrip(t *testing.T) {
	header := []string{"First Name", "E-mail", "Notes"}
	var rows []importer.Row
	for n := 1; n <= 2*inputChunk+7; n++ {
		row := importer.Row{Number: n, Line: n + 1, Columns: []importer.Column{{Name: "First Name", Value: "Ada"}, {Name: "E-mail", Value: "ada@example.com"}, {Name: "Notes", Value: "a,\"b\"\nc\x00"}}}
		switch n % 4 {
		case 1: // another order, other names: stored with names
			row.Columns = []importer.Column{{Name: "E-mail", Value: "x"}, {Name: "First Name", Value: "ünïcödé"}}
		case 2:
			row.Columns = nil
		}
		rows = append(rows, row)
	}
	// Given in any order, stored by chunk.
	shuffled := append([]importer.Row{}, rows[150:]...)
	shuffled = append(shuffled, rows[:150]...)
	fv := encodeChunks(shuffled, header)
	if len(fv) != 2*3 {
		t.Fatalf("%d rows made %d chunks, want 3", len(rows), len(fv)/2)
	}
	got := map[int]storedRecord{}
	for i := 0; i < len(fv); i += 2 {
		chunk := i / 2
		if fv[i] != chunkField(chunk) {
			t.Fatalf("chunk %d stored under %v", chunk, fv[i])
		}
		recs, err := decodeChunk(fv[i+1].([]byte), header)
		if err != nil {
			t.Fatal(err)
		}
		for off, rec := range recs {
			got[chunk*inputChunk+off+1] = rec
		}
	}
	for _, row := range rows {
		rec := got[row.Number]
		if rec.line != row.Line || !reflect.DeepEqual(rec.cols, append([]importer.Column{}, row.Columns...)) {
			t.Errorf("row %d: got line %d %q, want %d %q", row.Number, rec.line, rec.cols, row.Line, row.Columns)
		}
	}
}

func TestChunksAreSmall(t *testing.T) {
	header := []string{"First Name", "Last Name", "E-mail", "Rent Period"}
	var rows []importer.Row
	raw := 0
	for n := 1; n <= inputChunk; n++ {
		row := importer.Row{Number: n, Line: n + 1, Columns: []importer.Column{{Name: "First Name", Value: "Olivia"},
			{Name: "Last Name", Value: "Resident" + string(rune('a'+n%26))}, {Name: "E-mail", Value: "olivia.resident@example.com"}, {Name: "Rent Period", Value: "Monthly"}}}
		for _, c := range row.Columns {
			raw += len(c.Value) + 1
		}
		rows = append(rows, row)
	}
	fv := encodeChunks(rows, header)
	if n := len(fv[1].([]byte)); n > raw/3 {
		t.Errorf("a chunk of %d bytes of CSV is stored in %d bytes", raw, n)
	}
}

func TestDecodeChunkRefusesDamage(t *testing.T) {
	header := []string{"a", "b"}
	raw := appendInput(nil, importer.Row{Number: 3, Line: 3, Columns: []importer.Column{{Name: "a", Value: "1"}, {Name: "b", Value: "22"}}}, header)
	for n := 1; n < len(raw); n++ {
		if _, err := decodeChunk(zEncoder.EncodeAll(raw[:n], nil), header); err == nil {
			t.Errorf("a record cut to %d bytes decoded", n)
		}
	}
	if _, err := decodeChunk(zEncoder.EncodeAll(raw, nil), []string{"a"}); err == nil {
		t.Error("a record decoded against a header of another width")
	}
	if _, err := decodeChunk([]byte("not zstd"), header); err == nil {
		t.Error("a chunk that is not zstd decoded")
	}
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add(appendInput(nil, importer.Row{Number: 1, Line: 3, Columns: []importer.Column{{Name: "a", Value: "1"}}}, []string{"a"}))
	f.Add([]byte("\x00n\x01\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeChunk(zEncoder.EncodeAll(b, nil), []string{"a"}) // must not panic
	})
}

// BenchmarkChunks encodes and decodes rows as the split and the report do:
// per row, and bytes stored per row.
func BenchmarkChunks(b *testing.B) {
	header := []string{"Integration ID", "Property ID", "First Name", "Last Name", "E-mail", "Phone", "Date of Birth", "Address", "City", "Rent Period"}
	rows := make([]importer.Row, 1000)
	for i := range rows {
		n := strconv.Itoa(i + 1)
		vals := []string{"int_rentmanager_demo", "prop_100", "Olivia", "Resident" + n, "r" + n + "@example.com", "(555) 866-1791", "1970-03-13", n + " Maple Ave", "Austin", "Monthly"}
		rows[i] = importer.Row{Number: i + 1, Line: i + 2}
		for j, v := range vals {
			rows[i].Columns = append(rows[i].Columns, importer.Column{Name: header[j], Value: v})
		}
	}
	b.ReportAllocs()
	stored := 0
	for b.Loop() {
		fv := encodeChunks(rows, header)
		stored = 0
		for i := 1; i < len(fv); i += 2 {
			stored += len(fv[i].([]byte))
			if _, err := decodeChunk(fv[i].([]byte), header); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
	b.ReportMetric(float64(stored)/float64(len(rows)), "bytes/row")
}
