package source_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

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
