package importer_test

import (
	"fmt"
	"testing"

	"github.com/propexo-importer/importer/importer"
)

func BenchmarkValidatorCheck(b *testing.B) {
	opts, _ := importer.Options{Vendor: importer.VendorRentManager, IntegrationID: "int_1", PropertyID: "p", RentPeriod: "monthly", RentDueDay: 1}.Normalize()
	v := importer.NewValidator(opts)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		_, problems, _ := v.Check(importer.Row{Number: i, Values: map[string]string{
			"first_name": "Ada", "last_name": fmt.Sprint("Lovelace", i), "email_1": "ada@example.com",
			"phone_1": "(555) 010-0199", "phone_1_type": "mobile", "date_of_birth": "1990-04-12",
		}})
		if len(problems) > 0 {
			b.Fatal(problems)
		}
	}
}
