package importer_test

import (
	"strings"
	"testing"

	"github.com/propexo-importer/importer/importer"
)

func TestFieldFor(t *testing.T) {
	tests := map[string]string{
		"First Name": "first_name", "first_name": "first_name", "FIRST-NAME": "first_name", "Given Name": "first_name",
		"Last Name": "last_name", "Surname": "last_name",
		"E-mail": "email_1", "Email": "email_1", "email_1": "email_1", "Email Address": "email_1", "Email 2": "email_2",
		"Phone": "phone_1", "Phone Number": "phone_1", "phone_2": "phone_2", "Phone Type": "phone_1_type",
		"Date of Birth": "date_of_birth", "DOB": "date_of_birth", "Birthdate": "date_of_birth",
		"Zip Code": "zip", "Postal Code": "zip", "ZIP": "zip",
		"Unit": "address_2", "Address": "address_1", "Address Line 2": "address_2",
		"Integration ID": "integration_id", "Property Id": "property_id", "Rent Due Day": "rent_due_day",
		"rent_period": "rent_period", "Notes": "notes", "Alternate City": "city_alternate",
	}
	for label, want := range tests {
		if got, ok := importer.FieldFor(label); !ok || got != want {
			t.Errorf("FieldFor(%q) = %q, %v; want %q", label, got, ok, want)
		}
	}
	for _, label := range []string{"Move-in Date", "Favorite Color", ""} {
		if got, ok := importer.FieldFor(label); ok {
			t.Errorf("FieldFor(%q) = %q, want no field", label, got)
		}
	}
}

// FuzzFieldFor checks that header matching ignores case and punctuation.
func FuzzFieldFor(f *testing.F) {
	for _, s := range []string{"First Name", "E-mail", "Zip Code", "date_of_birth", "Unit #", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, label string) {
		field, ok := importer.FieldFor(label)
		upper, okUpper := importer.FieldFor(strings.ToUpper(label) + " ")
		if strings.ToUpper(label) == strings.ToLower(strings.ToUpper(label)) || ok != okUpper {
			return // labels whose case does not fold simply
		}
		if ok && field != upper {
			t.Fatalf("%q maps to %q but %q to %q", label, field, strings.ToUpper(label)+" ", upper)
		}
	})
}
