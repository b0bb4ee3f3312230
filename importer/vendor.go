package importer

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Vendor selects the create path of the write API and the rules a row must
// meet before it is sent.
type Vendor string

// The vendors the importer knows how to write to.
const (
	// VendorGeneric posts to /v1/residents/; the API picks the PMS from the
	// integration and applies its rules.
	VendorGeneric Vendor = "generic"
	// VendorRentManager posts to /v1/residents/rentmanager/.
	VendorRentManager Vendor = "rentmanager"
	// VendorPropertywareREST posts to /v1/residents/propertyware_rest/.
	VendorPropertywareREST Vendor = "propertyware_rest"
	// VendorBuildium posts to /v1/residents/buildium/: the PMS of
	// Propexo's sandbox environment.
	VendorBuildium Vendor = "buildium"
)

// VendorRules are the rules the write API applies to one vendor's creates.
type VendorRules struct {
	// Required lists the fields that must not be empty.
	Required []string
	// MaxLength caps the length, in characters, of some fields.
	MaxLength map[string]int
	// Takes lists the fields the vendor's create takes: any other key is
	// a 400 from the API. nil: every field (the generic create).
	Takes []string
	// Allowed lists, for some fields, the only values the vendor takes.
	Allowed map[string][]string
}

// Takes reports whether the vendor's create takes a field. x_id and
// x_property_id, which the importer matches on and never sends, are taken
// by every vendor.
func (v Vendor) Takes(field string) bool {
	takes := v.Rules().Takes
	return takes == nil || field == FieldXID || field == FieldXPropertyID || slices.Contains(takes, field)
}

// NotTaken lists the columns of a file that map (under the mapping m, nil
// for the aliases alone) to a field the vendor's create does not take:
// they are reported, kept in the report, never sent.
func (v Vendor) NotTaken(columns []string, m *Mapping) []string {
	var out []string
	for _, c := range columns {
		if f, ok := m.FieldFor(c); ok && f != FieldFullName && !v.Takes(f) {
			out = append(out, c)
		}
	}
	return out
}

// The fields of a resident's contact details and addresses, which most
// vendors' creates take.
var (
	contactFields = []string{FieldEmail1, FieldEmail2, FieldDateOfBirth, FieldPhone1, FieldPhone1Type, FieldPhone2, FieldPhone2Type}
	addressFields = []string{FieldAddress1, FieldAddress2, FieldCity, FieldState, FieldZip, FieldCountry}
	alternateAddr = []string{FieldAddress1Alternate, FieldAddress2Alternate, FieldCityAlternate, FieldStateAlternate, FieldZipAlternate, FieldCountryAlternate}
)

// fields joins lists of fields.
func fields(lists ...[]string) []string { return slices.Concat(lists...) }

// vendors holds the rules of every vendor that can create residents, as
// the vendors' create and update pages of Propexo's reference give them.
var vendors = map[Vendor]VendorRules{
	VendorGeneric: {
		Required: []string{FieldIntegrationID},
	},
	VendorRentManager: {
		Required: []string{FieldIntegrationID, FieldPropertyID, FieldRentPeriod, FieldRentDueDay, FieldFirstName, FieldLastName},
		Takes: fields([]string{FieldIntegrationID, FieldPropertyID, FieldRentPeriod, FieldRentDueDay, FieldFirstName, FieldMiddleName, FieldLastName, FieldNotes},
			contactFields, addressFields, alternateAddr),
	},
	VendorPropertywareREST: {
		Required:  []string{FieldIntegrationID, FieldFirstName, FieldLastName, FieldAddress1, FieldCity, FieldState, FieldZip, FieldCountry},
		MaxLength: map[string]int{FieldFirstName: 30, FieldMiddleName: 30, FieldLastName: 30},
		Takes:     fields([]string{FieldIntegrationID, FieldFirstName, FieldMiddleName, FieldLastName, FieldNotes}, contactFields, addressFields),
	},
	VendorBuildium: {
		Required:  []string{FieldIntegrationID, FieldLeaseID, FieldFirstName, FieldLastName, FieldAddress1, FieldCity, FieldState, FieldZip, FieldCountry},
		MaxLength: map[string]int{FieldAddress1: 100, FieldAddress2: 100, FieldCity: 100},
		Takes:     fields([]string{FieldIntegrationID, FieldLeaseID, FieldFirstName, FieldLastName}, contactFields, addressFields, alternateAddr),
		Allowed:   map[string][]string{FieldCountry: {"US"}},
	},
}

// noCreate names the PMS whose API answers 405 to a resident create.
var noCreate = map[string]string{
	"yardi":             "Yardi",
	"entrata":           "Entrata",
	"propertyware":      "Propertyware SOAP",
	"propertyware_soap": "Propertyware SOAP",
}

// Vendors lists the vendors the importer can write to, sorted.
func Vendors() []Vendor {
	out := make([]Vendor, 0, len(vendors))
	for v := range vendors {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ParseVendor turns a flag value into a Vendor, with a message that says what
// to use instead when it is not one.
func ParseVendor(s string) (Vendor, error) {
	v := Vendor(strings.ToLower(strings.TrimSpace(s)))
	if v == "" {
		return VendorGeneric, nil
	}
	if _, ok := vendors[v]; ok {
		return v, nil
	}
	names := make([]string, 0, len(vendors))
	for _, known := range Vendors() {
		names = append(names, string(known))
	}
	if pms, ok := noCreate[string(v)]; ok {
		return "", fmt.Errorf("vendor %q: %s cannot create residents through the API (it answers 405); use one of %s", s, pms, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("unknown vendor %q: use one of %s", s, strings.Join(names, ", "))
}

// VendorOfIntegration is the vendor whose rules and create path an
// integration takes, from the vendor the API names for it ("RENTMANAGER"):
// one the importer knows, else generic (the API applies the PMS's rules
// to a generic create).
func VendorOfIntegration(apiVendor string) Vendor {
	v := Vendor(strings.ToLower(strings.TrimSpace(apiVendor)))
	if _, ok := vendors[v]; ok {
		return v
	}
	return VendorGeneric
}

// Rules returns the vendor's rules.
func (v Vendor) Rules() VendorRules { return vendors[v] }

// CreatePath is the path of the write API that creates a resident for v.
func (v Vendor) CreatePath() string {
	if v == VendorGeneric || v == "" {
		return "/v1/residents/"
	}
	return "/v1/residents/" + string(v) + "/"
}
