package source_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/propexo-importer/importer/internal/source"
)

func benchInput(rows int, format string) string {
	var b strings.Builder
	if format == source.FormatCSV {
		b.WriteString("First Name,Last Name,E-mail,Phone,Date of Birth,Address,Unit,City,State,Zip Code,Notes\n")
	}
	for i := 0; i < rows; i++ {
		if format == source.FormatCSV {
			fmt.Fprintf(&b, "First%d,Last%d,r%d@example.com,(555) 010-%04d,1980-01-02,%d Main St,Apt %d,Austin,TX,78701,\"Likes tea, not coffee\"\n", i, i, i, i%10000, i, i%50)
		} else {
			fmt.Fprintf(&b, `{"first_name":"First%d","last_name":"Last%d","email_1":"r%d@example.com","phone_1":"(555) 010-%04d","date_of_birth":"1980-01-02","address_1":"%d Main St","city":"Austin","state":"TX","zip":"78701"}`+"\n", i, i, i, i%10000, i)
		}
	}
	return b.String()
}

func benchmarkRead(b *testing.B, format string) {
	const rows = 10000
	input := benchInput(rows, format)
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	for b.Loop() {
		rd, err := source.Open(strings.NewReader(input), format)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("read %d rows", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

func BenchmarkReadCSV(b *testing.B)    { benchmarkRead(b, source.FormatCSV) }
func BenchmarkReadNDJSON(b *testing.B) { benchmarkRead(b, source.FormatNDJSON) }

// BenchmarkReadXLSX reads a sheet of 100,000 rows, written by excelize's
// stream writer, and reports the most heap it held while reading (sampled
// every 5,000 rows): the rows stream, so it stays near the workbook's
// compressed size rather than growing with the rows.
func BenchmarkReadXLSX(b *testing.B) {
	const rows = 100000
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		b.Fatal(err)
	}
	sw.SetRow("A1", []any{"First Name", "Last Name", "E-mail", "Phone", "Date of Birth", "Address", "City", "State", "Zip Code"})
	dob := time.Date(1980, 1, 2, 0, 0, 0, 0, time.UTC)
	for i := range rows {
		cell, _ := excelize.CoordinatesToCellName(1, i+2)
		sw.SetRow(cell, []any{fmt.Sprint("First", i), fmt.Sprint("Last", i), fmt.Sprintf("r%d@example.com", i), fmt.Sprintf("(555) 010-%04d", i%10000), dob, fmt.Sprint(i, " Main St"), "Austin", "TX", 78701})
	}
	if err := sw.Flush(); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		rd, err := source.Open(bytes.NewReader(buf.Bytes()), source.FormatXLSX)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			row, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if row.Values["date_of_birth"] != "1980-01-02" {
				b.Fatalf("row %d: date of birth %q", n+1, row.Values["date_of_birth"])
			}
			if n++; n%5000 == 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > base.HeapInuse {
					peak = max(peak, m.HeapInuse-base.HeapInuse)
				}
			}
		}
		rd.Close()
		if n != rows {
			b.Fatalf("read %d rows", n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-peak-heap")
	b.ReportMetric(float64(buf.Len())/(1<<20), "MiB-workbook")
}
