package importer_test

import (
	"strings"
	"testing"

	"github.com/propexo-importer/importer/importer"
)

func rosterMapping(t *testing.T) importer.Mapping {
	t.Helper()
	m, err := importer.Mapping{Name: "roster.yaml", MatchKey: "Tenant Code", Strict: true,
		Columns:   map[string]string{"Full Name": "full_name", "Mobile": "phone_1", "Cell Type": "Phone_1_Type", "DOB": "date_of_birth"},
		Ignore:    []string{"Move-in"},
		Constants: map[string]string{"property_id": "prop_100", "rent_period": "monthly", "rent_due_day": "1"},
		Values:    map[string]map[string]string{"phone_1_type": {"Cell": "MOBILE", "landline": "HOME"}},
		Dates:     map[string]string{"date_of_birth": "mm/dd/yyyy"},
	}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A mapping reads a roster the aliases cannot: a full name split, a value
// map, a date format, constants for what the file leaves out, a column to
// ignore and the match key as x_id.
func TestMappingReadsARoster(t *testing.T) {
	m := rosterMapping(t)
	cols := []importer.Column{{Name: "Tenant Code", Value: "T-7"}, {Name: "Full Name", Value: "Lovelace, Ada"}, {Name: "mobile", Value: "555-010-1234"},
		{Name: "Cell Type", Value: "cell"}, {Name: "DOB", Value: "12/10/1985"}, {Name: "Move-in", Value: "2026-01-01"}, {Name: "Integration", Value: "int_1"}}
	opts, err := importer.Options{Vendor: importer.VendorRentManager, Mapping: &m}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	v := importer.NewValidator(opts)
	res, problems := v.Resident(v.Row(1, 2, cols))
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	want := importer.Resident{XID: "T-7", FirstName: "Ada", LastName: "Lovelace", Phone1: "555-010-1234", Phone1Type: "MOBILE",
		DateOfBirth: "1985-12-10T00:00:00Z", IntegrationID: "int_1", PropertyID: "prop_100", RentPeriod: "MONTHLY", RentDueDay: 1}
	if res != want {
		t.Errorf("resident = %+v\nwant       %+v", res, want)
	}
	if _, ok := m.FieldFor("Move-in"); ok {
		t.Error("an ignored column maps to a field")
	}
	if f, ok := m.FieldFor("E-mail"); !ok || f != "email_1" {
		t.Errorf("the aliases under a mapping: %q %v", f, ok)
	}
	if first, last := importer.SplitName("Ada King Lovelace"); first != "Ada King" || last != "Lovelace" {
		t.Errorf("SplitName = %q %q", first, last)
	}
}

// A strict mapping refuses a file whose columns are not its own, naming
// the columns gained and lost.
func TestStrictMappingNamesTheDifferences(t *testing.T) {
	m := rosterMapping(t)
	if err := m.CheckColumns([]string{"Tenant Code", "Full Name", "Mobile", "Cell Type", "DOB", "move in"}); err != nil {
		t.Errorf("the mapping's own columns (in another spelling): %v", err)
	}
	err := m.CheckColumns([]string{"Tenant Code", "Full Name", "Phone", "Cell Type", "DOB", "Move-in"})
	if err == nil || !strings.Contains(err.Error(), "it has columns the mapping does not name (Phone); it lacks columns the mapping names (Mobile)") {
		t.Errorf("err = %v", err)
	}
	loose := m
	loose.Strict = false
	if err := loose.CheckColumns([]string{"Anything"}); err != nil {
		t.Errorf("a mapping that is not strict refused: %v", err)
	}
}

// A mapping's content is part of the import's id; its file's name is not.
func TestMappingContentIsPartOfTheImportID(t *testing.T) {
	sum := []byte("content")
	m := rosterMapping(t)
	renamed := m
	renamed.Name = "other-name.yaml"
	changed := rosterMapping(t)
	changed.Constants["property_id"] = "prop_200"
	id := func(m *importer.Mapping) string {
		return importer.NewImportID("roster.csv", sum, importer.Options{Mapping: m})
	}
	if id(&m) != id(&renamed) {
		t.Error("renaming the mapping file changed the import id")
	}
	if id(&m) == id(&changed) || id(&m) == id(nil) {
		t.Error("a changed mapping (or none) kept the import id")
	}
	if m.Hash() == changed.Hash() || m.Hash() != renamed.Hash() {
		t.Error("the mapping's hash does not follow its content")
	}
}

func TestMappingErrorsNameThePlace(t *testing.T) {
	for _, tt := range []struct {
		m    importer.Mapping
		want string
	}{
		{importer.Mapping{Columns: map[string]string{"Mobile": "cellphone"}}, `columns.Mobile: "cellphone" is not a resident field`},
		{importer.Mapping{Dates: map[string]string{"date_of_birth": "MM/YYYY"}}, `dates.date_of_birth: "MM/YYYY" is not a date format`},
		{importer.Mapping{Dates: map[string]string{"first_name": "MM/DD/YYYY"}}, "dates: first_name is not a date field"},
		{importer.Mapping{Constants: map[string]string{"colour": "red"}}, `constants: "colour" is not a resident field`},
		{importer.Mapping{MatchKey: "Code", Columns: map[string]string{"Code": "email_1"}}, `match_key: column "Code" is mapped to email_1, not x_id`},
		{importer.Mapping{Ignore: []string{"Mobile"}, Columns: map[string]string{"Mobile": "phone_1"}}, `ignore: column "Mobile" is also mapped`},
	} {
		if _, err := tt.m.Normalize(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Normalize(%+v) = %v, want %q", tt.m, err, tt.want)
		}
	}
}

// A row read with a whole-name column names its resident for people (the
// dashboard's "who") by that name.
func TestWhoUnderAMapping(t *testing.T) {
	m := rosterMapping(t)
	row := m.RowOf(1, 2, []importer.Column{{Name: "Full Name", Value: "Lovelace, Ada"}, {Name: "E-mail", Value: "ada@example.com"}})
	if got := row.Who(); got != "Lovelace, Ada <ada@example.com>" {
		t.Errorf("Who = %q", got)
	}
}
