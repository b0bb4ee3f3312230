package importer_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
)

func TestParseMatchOn(t *testing.T) {
	for in, want := range map[string]string{
		"":                     importer.DefaultMatchOn,
		"email, x_id":          "email_1,x_id",
		"NAME+DOB,email_1,xid": "name+dob,email_1,x_id",
		"email_1,email_1":      "email_1",
		"phone_1":              "",
		"email_1,first_name":   "",
	} {
		got, err := importer.ParseMatchOn(in)
		if want == "" {
			if err == nil {
				t.Errorf("ParseMatchOn(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseMatchOn(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestMatchKeyIsTheFirstKeyTheRowHas(t *testing.T) {
	on := importer.MatchKeys(importer.DefaultMatchOn)
	for _, tt := range []struct {
		r    importer.Resident
		want string
	}{
		{importer.Resident{XID: " 100 ", Email1: "a@b.co"}, "x_id:100"},
		{importer.Resident{Email1: "Ada@Example.COM", FirstName: "Ada"}, "email_1:ada@example.com"},
		{importer.Resident{FirstName: " Ada  Mae", LastName: "LOVELACE", DateOfBirth: "1985-12-10T00:00:00Z"}, "name+dob:ada mae|lovelace|1985-12-10"},
		{importer.Resident{FirstName: "Ada", LastName: "Lovelace"}, ""}, // no date of birth: no key
	} {
		got, ok := importer.MatchKeyOf(tt.r, on)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("MatchKeyOf(%+v) = %q, %v; want %q", tt.r, got, ok, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	row := importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace", Email1: "ada@example.com", Phone1: "(555) 010-0000"}
	same := importer.ResidentRecord{ID: "res_1", Resident: importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace",
		Email1: "ADA@example.com", Phone1: "555.010.0000", City: "London"}}
	moved := same
	moved.Phone1 = "555-999-0000"
	other := importer.ResidentRecord{ID: "res_2", Resident: same.Resident}
	sent := &importer.LedgerEntry{RecordID: "res_9", Sent: importer.SentHash(row), At: time.Now()}
	stale := &importer.LedgerEntry{RecordID: "res_9", Sent: "something else", At: time.Now()}

	for _, tt := range []struct {
		name    string
		mode    importer.Mode
		matches []importer.ResidentRecord
		ledger  *importer.LedgerEntry
		action  importer.Action
		outcome importer.Outcome
		record  string
	}{
		{"same values, phone and email written otherwise", importer.ModeUpsert, []importer.ResidentRecord{same}, nil, importer.ActionNone, importer.Unchanged, "res_1"},
		{"a changed phone", importer.ModeUpsert, []importer.ResidentRecord{moved}, nil, importer.ActionUpdate, "", "res_1"},
		{"nobody", importer.ModeUpsert, nil, nil, importer.ActionCreate, "", ""},
		{"nobody, update only", importer.ModeUpdate, nil, nil, importer.ActionNone, importer.NotFound, ""},
		{"a match, create-missing", importer.ModeCreateMissing, []importer.ResidentRecord{moved}, nil, importer.ActionNone, importer.Unchanged, "res_1"},
		{"two residents", importer.ModeUpsert, []importer.ResidentRecord{same, other}, nil, importer.ActionNone, importer.Conflict, ""},
		{"not listed, written with these values", importer.ModeUpsert, nil, sent, importer.ActionNone, importer.Unchanged, "res_9"},
		{"not listed, written with others", importer.ModeUpsert, nil, stale, importer.ActionUpdate, "", "res_9"},
		{"create mode looks nothing up", importer.ModeCreate, []importer.ResidentRecord{same}, nil, importer.ActionCreate, "", ""},
	} {
		d := importer.Decide(tt.mode, row, nil, tt.matches, tt.ledger)
		if d.Action != tt.action || d.Outcome != tt.outcome || d.RecordID != tt.record {
			t.Errorf("%s: %+v; want %s %s %s", tt.name, d, tt.action, tt.outcome, tt.record)
		}
	}
	d := importer.Decide(importer.ModeUpsert, row, nil, []importer.ResidentRecord{moved}, nil)
	if len(d.Changes) != 1 || d.Changes[0] != (importer.Change{Field: "phone_1", Old: "555-999-0000", New: "(555) 010-0000"}) {
		t.Errorf("changes = %+v, want only phone_1 (an empty city in the row erases nothing)", d.Changes)
	}
}

func TestUpdateCarriesWhatTheVendorRequires(t *testing.T) {
	row := importer.Resident{IntegrationID: "int_1", LastName: "Lovelace", Phone1: "555-999-0000"}
	rec := importer.ResidentRecord{ID: "res_1", Resident: importer.Resident{LastName: "Lovelace", RentPeriod: "MONTHLY", RentDueDay: 1, City: "London"}}
	body := importer.UpdateOf(importer.VendorRentManager, row, &rec, []importer.Change{{Field: "phone_1", New: "555-999-0000"}})
	want := importer.Resident{IntegrationID: "int_1", LastName: "Lovelace", RentPeriod: "MONTHLY", RentDueDay: 1, Phone1: "555-999-0000", Phone1Type: importer.DefaultPhoneType}
	if body != want {
		t.Errorf("update body = %+v, want %+v", body, want)
	}
}

func TestGuards(t *testing.T) {
	counts := importer.PlanCounts{Total: 200, Create: 30, Update: 5}
	for _, tt := range []struct {
		creates, updates string
		refused          string
	}{
		{"", "", ""},
		{"30", "", ""},
		{"29", "", "max_creates"},
		{"15%", "", ""},
		{"14%", "", "max_creates"},
		{"", "0", "max_updates"},
	} {
		c, err1 := importer.ParseGuard(tt.creates)
		u, err2 := importer.ParseGuard(tt.updates)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		err := importer.CheckGuards(counts, c, u)
		if (err == nil) != (tt.refused == "") || (err != nil && !strings.Contains(err.Error(), tt.refused)) {
			t.Errorf("creates %q, updates %q: %v; want refused by %q", tt.creates, tt.updates, err, tt.refused)
		}
	}
	for _, bad := range []string{"-1", "101%", "ten", "5%%"} {
		if _, err := importer.ParseGuard(bad); err == nil {
			t.Errorf("ParseGuard(%q) took it", bad)
		}
	}
}

// --blank-clears clears a field a row leaves empty, but never one the vendor
// requires or does not take.
func TestBlanksLeaveWhatTheVendorDoesNotTake(t *testing.T) {
	row := importer.Row{Values: map[string]string{"notes": "", "email_2": " ", "last_name": "", "first_name": "Ada"}}
	got := importer.Blanks(row, importer.Resident{FirstName: "Ada"}, importer.VendorBuildium)
	if strings.Join(got, ",") != "email_2" {
		t.Errorf("Blanks = %v, want only email_2 (notes: not taken; last_name: required)", got)
	}
	if got := importer.Blanks(row, importer.Resident{FirstName: "Ada"}, importer.VendorGeneric); len(got) != 3 || !slices.Contains(got, "notes") {
		t.Errorf("generic Blanks = %v, want last_name, email_2 and notes", got)
	}
}
