package store

import (
	"reflect"
	"testing"

	"github.com/propexo-importer/importer/importer"
)

func TestInputRoundTrip(t *testing.T) {
	header := []string{"First Name", "E-mail", "Notes"}
	cases := []importer.Row{
		{Line: 2, Columns: []importer.Column{{Name: "First Name", Value: "Ada"}, {Name: "E-mail", Value: "ada@example.com"}, {Name: "Notes", Value: "a,\"b\"\nc\x00"}}},
		{Line: 7, Columns: []importer.Column{{Name: "First Name", Value: ""}, {Name: "E-mail", Value: ""}, {Name: "Notes", Value: ""}}},
		// Another order, fewer columns, other names: stored with names.
		{Line: 9, Columns: []importer.Column{{Name: "E-mail", Value: "x"}, {Name: "First Name", Value: "y"}}},
		{Line: 10, Columns: []importer.Column{{Name: "extra", Value: "ünïcödé"}}},
		{Line: 11},
	}
	for i, row := range cases {
		b := appendInput(nil, row, header)
		line, cols, err := decodeInput(b, header)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if line != row.Line || !reflect.DeepEqual(cols, append([]importer.Column{}, row.Columns...)) {
			t.Errorf("case %d: got line %d %q, want %d %q", i, line, cols, row.Line, row.Columns)
		}
	}
	// A row of the header's shape stores its values only.
	if b := appendInput(nil, cases[0], header); b[0] != inputByHeader || len(b) > 2+3+3+15+len(cases[0].Columns[2].Value)+3 {
		t.Errorf("header-shaped row encoded as %q (%d bytes)", b, len(b))
	}
}

func TestDecodeInputRefusesDamage(t *testing.T) {
	header := []string{"a", "b"}
	good := appendInput(nil, importer.Row{Line: 3, Columns: []importer.Column{{Name: "a", Value: "1"}, {Name: "b", Value: "22"}}}, header)
	for n := 0; n < len(good); n++ {
		if _, _, err := decodeInput(good[:n], header); err == nil {
			t.Errorf("a record cut to %d bytes decoded", n)
		}
	}
	if _, _, err := decodeInput(append(good, 'x'), header); err == nil {
		t.Error("a record with trailing bytes decoded")
	}
	if _, _, err := decodeInput(good, []string{"a"}); err == nil {
		t.Error("a record decoded against a header of another width")
	}
}

func FuzzDecodeInput(f *testing.F) {
	f.Add(appendInput(nil, importer.Row{Line: 3, Columns: []importer.Column{{Name: "a", Value: "1"}}}, []string{"a"}))
	f.Add([]byte("n\x01\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeInput(b, []string{"a"}) // must not panic or allocate without bound
	})
}
