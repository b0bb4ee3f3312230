package importer_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
)

func rmOptions(t *testing.T) importer.Options {
	t.Helper()
	opts, err := importer.Options{Vendor: importer.VendorRentManager, IntegrationID: "int_1", PropertyID: "prop_1", RentPeriod: "monthly", RentDueDay: 1}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

func row(n int, values map[string]string) importer.Row {
	return importer.Row{Number: n, Line: n + 1, Values: values}
}

func TestValidatorRules(t *testing.T) {
	person := func(extra map[string]string) map[string]string {
		v := map[string]string{"first_name": "Ada", "last_name": "Lovelace"}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	tests := []struct {
		name     string
		vendor   importer.Vendor
		values   map[string]string
		problems []string // "field: part of the reason"
	}{
		{name: "valid rentmanager with defaults", vendor: importer.VendorRentManager, values: person(nil)},
		{name: "bad email", vendor: importer.VendorRentManager, values: person(map[string]string{"email_1": "ada@"}), problems: []string{"email_1: \"ada@\" is not an email address"}},
		{name: "email without dot in domain", vendor: importer.VendorRentManager, values: person(map[string]string{"email_2": "ada@localhost"}), problems: []string{"email_2: "}},
		{name: "email with display name", vendor: importer.VendorRentManager, values: person(map[string]string{"email_1": "Ada <ada@example.com>"}), problems: []string{"email_1: "}},
		{name: "date as YYYY-MM-DD", vendor: importer.VendorRentManager, values: person(map[string]string{"date_of_birth": "1990-04-12"})},
		{name: "date as RFC 3339", vendor: importer.VendorRentManager, values: person(map[string]string{"date_of_birth": "1990-04-12T10:00:00+02:00"})},
		{name: "date in another format", vendor: importer.VendorRentManager, values: person(map[string]string{"date_of_birth": "12/04/1990"}), problems: []string{"date_of_birth: \"12/04/1990\" is not a date"}},
		{name: "date in the future", vendor: importer.VendorRentManager, values: person(map[string]string{"date_of_birth": "2999-01-01"}), problems: []string{"date_of_birth: \"2999-01-01\" is in the future"}},
		{name: "phone type any case", vendor: importer.VendorRentManager, values: person(map[string]string{"phone_1": "+1 (555) 010-0199", "phone_1_type": "mobile"})},
		{name: "unknown phone type", vendor: importer.VendorRentManager, values: person(map[string]string{"phone_2_type": "cell"}), problems: []string{"phone_2_type: \"cell\" is not one of FAX, HOME, MOBILE, OTHER, WORK"}},
		{name: "phone with letters", vendor: importer.VendorRentManager, values: person(map[string]string{"phone_1": "555-CALL-NOW"}), problems: []string{"phone_1: "}},
		{name: "phone too short", vendor: importer.VendorRentManager, values: person(map[string]string{"phone_1": "12345"}), problems: []string{"phone_1: \"12345\" is not a phone number: it has 5 digits"}},
		{name: "rent period any case", vendor: importer.VendorRentManager, values: person(map[string]string{"rent_period": "Weekly"})},
		{name: "unknown rent period", vendor: importer.VendorRentManager, values: person(map[string]string{"rent_period": "yearly"}), problems: []string{"rent_period: \"yearly\" is not one of MONTHLY, WEEKLY, DAILY"}},
		{name: "rent due day out of range", vendor: importer.VendorRentManager, values: person(map[string]string{"rent_due_day": "32"}), problems: []string{"rent_due_day: 32 is not a day of the month (1-31)"}},
		{name: "rent due day not a number", vendor: importer.VendorRentManager, values: person(map[string]string{"rent_due_day": "first"}), problems: []string{"rent_due_day: \"first\" is not a whole number"}},
		{name: "rentmanager requires names", vendor: importer.VendorRentManager, values: map[string]string{}, problems: []string{"first_name: is required for rentmanager", "last_name: is required for rentmanager"}},
		{name: "generic requires only the integration", vendor: importer.VendorGeneric, values: map[string]string{"integration_id": "int_9"}},
		{name: "propertyware requires an address", vendor: importer.VendorPropertywareREST, values: person(nil), problems: []string{"address_1: is required", "city: is required", "state: is required", "zip: is required", "country: is required"}},
		{name: "propertyware caps names at 30", vendor: importer.VendorPropertywareREST, values: person(map[string]string{"first_name": strings.Repeat("a", 31), "address_1": "1 Main St", "city": "Austin", "state": "TX", "zip": "78701", "country": "US"}), problems: []string{"first_name: is 31 characters long; propertyware_rest allows at most 30"}},
		{name: "every problem is listed", vendor: importer.VendorRentManager, values: person(map[string]string{"email_1": "x", "rent_due_day": "0", "phone_1_type": "fax2"}), problems: []string{"email_1: ", "phone_1_type: ", "rent_due_day: "}},
		{name: "control characters", vendor: importer.VendorGeneric, values: map[string]string{"integration_id": "i", "first_name": "Ada\x1b[31m"}, problems: []string{"first_name: holds the control character U+001B"}},
		{name: "notes may break lines", vendor: importer.VendorGeneric, values: map[string]string{"integration_id": "i", "notes": "line one\r\nline\ttwo"}},
		{name: "text too long", vendor: importer.VendorGeneric, values: map[string]string{"integration_id": "i", "notes": strings.Repeat("n", 256)}, problems: []string{"notes: is 256 characters long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := rmOptions(t)
			opts.Vendor = tt.vendor
			if tt.vendor != importer.VendorRentManager {
				opts.PropertyID, opts.RentPeriod, opts.RentDueDay = "", "", 0
				if tt.vendor == importer.VendorPropertywareREST {
					opts.IntegrationID = "int_pw"
				} else {
					opts.IntegrationID = ""
				}
			}
			_, problems, _ := importer.NewValidator(opts).Check(row(1, tt.values))
			if len(problems) != len(tt.problems) {
				t.Fatalf("got problems %q, want %d: %q", importer.JoinProblems(problems), len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if got := problems[i].String(); !strings.HasPrefix(got, want) && !strings.Contains(got, want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got, want)
				}
			}
		})
	}
}

func TestValidatorNormalisesWhatItSends(t *testing.T) {
	v := importer.NewValidator(rmOptions(t))
	res, problems, _ := v.Check(row(1, map[string]string{
		"first_name": "  Ada ", "last_name": "Lovelace", "date_of_birth": "1990-04-12",
		"phone_1": "555 010 0199", "phone_1_type": "Mobile", "rent_period": "weekly",
	}))
	if len(problems) > 0 {
		t.Fatal(importer.JoinProblems(problems))
	}
	want := importer.Resident{
		IntegrationID: "int_1", PropertyID: "prop_1", FirstName: "Ada", LastName: "Lovelace",
		DateOfBirth: "1990-04-12T00:00:00Z", Phone1: "555 010 0199", Phone1Type: "MOBILE",
		RentPeriod: "WEEKLY", RentDueDay: 1,
	}
	if res != want {
		t.Errorf("resident =\n%+v\nwant\n%+v", res, want)
	}
	res, _, _ = v.Check(row(2, map[string]string{"first_name": "Bo", "last_name": "Li", "date_of_birth": "1990-04-12T23:30:00-02:00"}))
	if res.DateOfBirth != "1990-04-13T01:30:00Z" {
		t.Errorf("RFC 3339 date sent as %q, want it in UTC", res.DateOfBirth)
	}
}

func TestValidatorDuplicates(t *testing.T) {
	v := importer.NewValidator(rmOptions(t))
	ada := map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email_1": "ada@example.com"}
	if _, _, dup := v.Check(row(1, ada)); dup != 0 {
		t.Fatalf("first record reported as duplicate of row %d", dup)
	}
	if _, _, dup := v.Check(row(2, map[string]string{"first_name": "Bo", "last_name": "Li"})); dup != 0 {
		t.Fatalf("another record reported as duplicate of row %d", dup)
	}
	if _, _, dup := v.Check(row(3, ada)); dup != 1 {
		t.Errorf("repeat of row 1: duplicate of %d, want 1", dup)
	}
	// The same record after normalisation (spaces, case of enums) is the
	// same resident.
	if _, _, dup := v.Check(row(4, map[string]string{"first_name": " Ada", "last_name": "Lovelace ", "email_1": "ada@example.com", "rent_period": "MONTHLY"})); dup != 1 {
		t.Errorf("normalised repeat of row 1: duplicate of %d, want 1", dup)
	}
	// Emails and names in another case are the same resident, as the
	// API's look-up matches them.
	if _, _, dup := v.Check(row(7, map[string]string{"first_name": "ADA", "last_name": "lovelace", "email_1": "Ada@Example.COM"})); dup != 1 {
		t.Errorf("row 1 in another case: duplicate of %d, want 1", dup)
	}
	if _, _, dup := v.Check(row(8, map[string]string{"first_name": "Émile", "last_name": "Zola", "email_1": "emile@example.com"})); dup != 0 {
		t.Fatalf("a new resident: duplicate of %d", dup)
	}
	if _, _, dup := v.Check(row(9, map[string]string{"first_name": "ÉMILE", "last_name": "ZOLA", "email_1": "EMILE@example.com"})); dup != 8 {
		t.Errorf("row 8 in another case: duplicate of %d, want 8", dup)
	}
	// An invalid row is invalid, not a duplicate.
	bad := map[string]string{"first_name": "Ada", "last_name": "Lovelace", "email_1": "nope"}
	v.Check(row(5, bad))
	if _, problems, dup := v.Check(row(6, bad)); dup != 0 || len(problems) == 0 {
		t.Errorf("repeat of an invalid row: dup=%d problems=%v, want invalid", dup, problems)
	}
}

func TestRowErrIsInvalid(t *testing.T) {
	_, problems, _ := importer.NewValidator(rmOptions(t)).Check(importer.Row{Number: 1, Err: errString("line 3: not a JSON object")})
	if len(problems) != 1 || problems[0].Reason != "line 3: not a JSON object" {
		t.Errorf("problems = %v", problems)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestOptionsNormalize(t *testing.T) {
	tests := []struct {
		name    string
		opts    importer.Options
		wantErr string
	}{
		{name: "defaults", opts: importer.Options{}},
		{name: "unknown vendor", opts: importer.Options{Vendor: "acme"}, wantErr: `unknown vendor "acme": use one of buildium, generic, propertyware_rest, rentmanager`},
		{name: "vendor that cannot create", opts: importer.Options{Vendor: "yardi"}, wantErr: "Yardi cannot create residents"},
		{name: "bad rent period", opts: importer.Options{RentPeriod: "yearly"}, wantErr: "rent_period"},
		{name: "bad due day", opts: importer.Options{RentDueDay: 40}, wantErr: "rent_due_day: 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.Normalize()
			if tt.wantErr == "" {
				if err != nil || got.Vendor != importer.VendorGeneric || got.Deadline != importer.DefaultDeadline {
					t.Fatalf("Normalize() = %+v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestImportIDIsDeterministic(t *testing.T) {
	opts := rmOptions(t)
	sum := []byte("content hash")
	a := importer.NewImportID("data/Residents 2026.csv", sum, opts)
	if a != importer.NewImportID("/elsewhere/Residents 2026.csv", sum, opts) {
		t.Error("the same file and options gave two ids")
	}
	if !strings.HasPrefix(a, "residents-2026-") || len(a) != len("residents-2026-")+12 {
		t.Errorf("id %q is not <name>-<12 hex>", a)
	}
	other := opts
	other.RentDueDay = 2
	if a == importer.NewImportID("Residents 2026.csv", sum, other) {
		t.Error("other options gave the same id")
	}
	if a == importer.NewImportID("Residents 2026.csv", []byte("other content"), opts) {
		t.Error("other content gave the same id")
	}
	// How an import is followed does not make it another import.
	followed := opts
	followed.Deadline, followed.Verify = time.Hour, true
	if a != importer.NewImportID("Residents 2026.csv", sum, followed) {
		t.Error("another deadline and --verify gave another id")
	}
	for _, change := range []func(*importer.Options){
		func(o *importer.Options) { o.Vendor = importer.VendorGeneric },
		func(o *importer.Options) { o.IntegrationID = "int_other" },
		func(o *importer.Options) { o.PropertyID = "prop_other" },
		func(o *importer.Options) { o.RentPeriod = "WEEKLY" },
		func(o *importer.Options) { o.Format = "ndjson" },
	} {
		written := opts
		change(&written)
		if a == importer.NewImportID("Residents 2026.csv", sum, written) {
			t.Errorf("options that change what is written (%+v) gave the same id", written)
		}
	}
	if err := importer.ValidateImportID(a); err != nil {
		t.Errorf("derived id %q is not a valid --import-id: %v", a, err)
	}
	if err := importer.ValidateImportID("../etc"); err == nil {
		t.Error("a path passed as an import id")
	}
}

func TestDeadline(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	imp := importer.Import{CreatedAt: created, Options: importer.Options{Deadline: time.Hour}}
	if got := imp.Deadline(); !got.Equal(created.Add(time.Hour)) {
		t.Errorf("Deadline() = %v", got)
	}
}

// FuzzValidate checks the validator on any values: no panic, and a valid row
// is sent only with values that pass the rules again.
func FuzzValidate(f *testing.F) {
	f.Add("Ada", "Lovelace", "ada@example.com", "1990-04-12", "+1 555 010 0199", "mobile", "monthly", "5")
	f.Add("", "\x1b[31m", "a@b", "2999-01-01", "x", "pager", "yearly", "99")
	f.Fuzz(func(t *testing.T, first, last, email, dob, phone, phoneType, period, day string) {
		opts, _ := importer.Options{Vendor: importer.VendorRentManager, IntegrationID: "i", PropertyID: "p"}.Normalize()
		v := importer.NewValidator(opts)
		values := map[string]string{"first_name": first, "last_name": last, "email_1": email, "date_of_birth": dob,
			"phone_1": phone, "phone_1_type": phoneType, "rent_period": period, "rent_due_day": day}
		res, problems, _ := v.Check(importer.Row{Number: 1, Values: values})
		if len(problems) > 0 {
			return
		}
		again := map[string]string{"first_name": res.FirstName, "last_name": res.LastName, "email_1": res.Email1, "date_of_birth": res.DateOfBirth,
			"phone_1": res.Phone1, "phone_1_type": res.Phone1Type, "rent_period": res.RentPeriod, "rent_due_day": strconv.Itoa(res.RentDueDay)}
		if _, problems, _ := importer.NewValidator(opts).Check(importer.Row{Number: 1, Values: again}); len(problems) > 0 {
			t.Fatalf("a sent resident %+v fails its own rules: %v", res, problems)
		}
	})
}

// Each vendor's create takes only its own fields: a field it does not take
// is never sent (nor filled from a default), and the columns that carry one
// are named; Buildium requires a lease and a US address.
func TestVendorsTakeOnlyTheirFields(t *testing.T) {
	opts, err := importer.Options{Vendor: importer.VendorBuildium, IntegrationID: "int_b", PropertyID: "prop_1", RentPeriod: "monthly", RentDueDay: 1}.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	v := importer.NewValidator(opts)
	values := map[string]string{"first_name": "Ada", "last_name": "Lovelace", "lease_id": "lease_1", "address_1": "1 Main St",
		"city": "Austin", "state": "TX", "zip": "78701", "country": "US", "notes": "VIP", "middle_name": "B", "x_id": "77"}
	res, problems, _ := v.Check(row(1, values))
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	if res.Notes != "" || res.MiddleName != "" || res.PropertyID != "" || res.RentPeriod != "" || res.RentDueDay != 0 {
		t.Errorf("fields Buildium does not take were kept: %+v", res)
	}
	if res.LeaseID != "lease_1" || res.XID != "77" || res.IntegrationID != "int_b" {
		t.Errorf("fields Buildium takes (and x_id, never sent but matched on) were lost: %+v", res)
	}
	values["country"], values["lease_id"] = "CA", ""
	_, problems, _ = v.Check(row(2, values))
	if got := importer.JoinProblems(problems); !strings.Contains(got, "lease_id: is required for buildium") || !strings.Contains(got, `country: is "CA"; buildium takes only US`) {
		t.Errorf("problems = %q", got)
	}
	cols := []string{"First Name", "Notes", "Middle Name", "Property ID", "Lease ID", "Favourite colour"}
	if got := importer.VendorBuildium.NotTaken(cols, nil); strings.Join(got, ",") != "Notes,Middle Name,Property ID" {
		t.Errorf("NotTaken = %v", got)
	}
	if got := importer.VendorGeneric.NotTaken(cols, nil); len(got) != 0 {
		t.Errorf("the generic create takes every field; NotTaken = %v", got)
	}
}
