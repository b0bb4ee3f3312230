package source

import (
	"strconv"
	"strings"
	"unicode"

	"github.com/propexo-importer/importer/importer"
)

// aliases maps a normalised column label to the API field it means. Labels
// are normalised by normalize: lower case, letters and digits only, so "First
// Name", "first_name" and "FIRST-NAME" are all "firstname".
var aliases = map[string]string{
	"integration": importer.FieldIntegrationID, "integrationid": importer.FieldIntegrationID,
	"property": importer.FieldPropertyID, "propertyid": importer.FieldPropertyID,
	"lease": importer.FieldLeaseID, "leaseid": importer.FieldLeaseID,

	"firstname": importer.FieldFirstName, "first": importer.FieldFirstName, "givenname": importer.FieldFirstName, "forename": importer.FieldFirstName,
	"middlename": importer.FieldMiddleName, "middle": importer.FieldMiddleName, "middleinitial": importer.FieldMiddleName,
	"lastname": importer.FieldLastName, "last": importer.FieldLastName, "surname": importer.FieldLastName, "familyname": importer.FieldLastName,

	"email": importer.FieldEmail1, "email1": importer.FieldEmail1, "emailaddress": importer.FieldEmail1, "primaryemail": importer.FieldEmail1,
	"email2": importer.FieldEmail2, "secondaryemail": importer.FieldEmail2, "alternateemail": importer.FieldEmail2, "emailaddress2": importer.FieldEmail2,

	"dateofbirth": importer.FieldDateOfBirth, "dob": importer.FieldDateOfBirth, "birthdate": importer.FieldDateOfBirth, "birthday": importer.FieldDateOfBirth,

	"phone": importer.FieldPhone1, "phone1": importer.FieldPhone1, "phonenumber": importer.FieldPhone1, "telephone": importer.FieldPhone1, "primaryphone": importer.FieldPhone1,
	"phonetype": importer.FieldPhone1Type, "phone1type": importer.FieldPhone1Type,
	"phone2": importer.FieldPhone2, "secondaryphone": importer.FieldPhone2, "alternatephone": importer.FieldPhone2, "phonenumber2": importer.FieldPhone2,
	"phone2type": importer.FieldPhone2Type,

	"address": importer.FieldAddress1, "address1": importer.FieldAddress1, "addressline1": importer.FieldAddress1, "street": importer.FieldAddress1, "streetaddress": importer.FieldAddress1,
	"address2": importer.FieldAddress2, "addressline2": importer.FieldAddress2, "unit": importer.FieldAddress2, "unitnumber": importer.FieldAddress2, "apt": importer.FieldAddress2, "apartment": importer.FieldAddress2, "suite": importer.FieldAddress2,
	"city": importer.FieldCity, "town": importer.FieldCity,
	"state": importer.FieldState, "province": importer.FieldState, "region": importer.FieldState,
	"zip": importer.FieldZip, "zipcode": importer.FieldZip, "postalcode": importer.FieldZip, "postcode": importer.FieldZip,
	"country": importer.FieldCountry,

	"address1alternate": importer.FieldAddress1Alternate, "alternateaddress1": importer.FieldAddress1Alternate, "alternateaddress": importer.FieldAddress1Alternate,
	"address2alternate": importer.FieldAddress2Alternate, "alternateaddress2": importer.FieldAddress2Alternate,
	"cityalternate": importer.FieldCityAlternate, "alternatecity": importer.FieldCityAlternate,
	"statealternate": importer.FieldStateAlternate, "alternatestate": importer.FieldStateAlternate,
	"zipalternate": importer.FieldZipAlternate, "alternatezip": importer.FieldZipAlternate,
	"countryalternate": importer.FieldCountryAlternate, "alternatecountry": importer.FieldCountryAlternate,

	"notes": importer.FieldNotes, "note": importer.FieldNotes, "comments": importer.FieldNotes, "comment": importer.FieldNotes,
	"rentperiod": importer.FieldRentPeriod, "rentfrequency": importer.FieldRentPeriod,
	"rentdueday": importer.FieldRentDueDay, "dueday": importer.FieldRentDueDay, "rentday": importer.FieldRentDueDay,
}

// normalize reduces a column label to lower-case letters and digits.
func normalize(label string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(label) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// FieldFor returns the API field a column label stands for, matching case-
// and punctuation-insensitively and knowing common human labels ("E-mail",
// "Zip Code", "Date of Birth", "Unit").
func FieldFor(label string) (field string, ok bool) {
	field, ok = aliases[normalize(label)]
	return field, ok
}

// columns keeps the column names of a file in order of first appearance and
// what each maps to. In a CSV header (unique names) a field claimed by two
// columns goes to the first; the second is kept as an unknown column. JSON
// objects may each spell a field their own way; within one object the first
// key wins (see Reader.build).
type columns struct {
	names   []string
	index   map[string]int
	fields  []string // by column: the API field, or "" for an unknown column
	claimed map[string]bool
	// suffix is the next " (n)" to try for a repeated name, so that
	// renaming many repeats stays linear.
	suffix map[string]int
}

func newColumns() *columns {
	return &columns{index: map[string]int{}, claimed: map[string]bool{}, suffix: map[string]int{}}
}

// has reports whether a column of that name was seen.
func (c *columns) has(name string) bool {
	_, ok := c.index[name]
	return ok
}

// add registers a column name and returns its position. An empty name is
// called "column N"; a repeated one gets " (2)", " (3)"...
func (c *columns) add(name string, unique bool) int {
	if name == "" {
		name = "column " + strconv.Itoa(len(c.names)+1)
	}
	if i, ok := c.index[name]; ok && !unique {
		return i
	}
	if _, ok := c.index[name]; ok {
		base := name
		for n := max(c.suffix[base], 2); ; n++ {
			name = base + " (" + strconv.Itoa(n) + ")"
			if _, taken := c.index[name]; !taken {
				c.suffix[base] = n + 1
				break
			}
		}
	}
	field, ok := FieldFor(name)
	if !ok || (unique && c.claimed[field]) {
		field = ""
	} else {
		c.claimed[field] = true
	}
	c.index[name] = len(c.names)
	c.names = append(c.names, name)
	c.fields = append(c.fields, field)
	return len(c.names) - 1
}

func (c *columns) unknown() []string {
	var out []string
	for i, f := range c.fields {
		if f == "" {
			out = append(out, c.names[i])
		}
	}
	return out
}
