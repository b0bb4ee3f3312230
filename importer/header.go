package importer

import (
	"strings"
	"unicode"
)

// Header labels: the columns of a file name API fields in many ways.

// aliases maps a normalised column label to the API field it means. Labels
// are normalised by normalize: lower case, letters and digits only, so "First
// Name", "first_name" and "FIRST-NAME" are all "firstname".
var aliases = map[string]string{
	"integration": FieldIntegrationID, "integrationid": FieldIntegrationID,
	"property": FieldPropertyID, "propertyid": FieldPropertyID,
	"lease": FieldLeaseID, "leaseid": FieldLeaseID,

	"firstname": FieldFirstName, "first": FieldFirstName, "givenname": FieldFirstName, "forename": FieldFirstName,
	"middlename": FieldMiddleName, "middle": FieldMiddleName, "middleinitial": FieldMiddleName,
	"lastname": FieldLastName, "last": FieldLastName, "surname": FieldLastName, "familyname": FieldLastName,

	"email": FieldEmail1, "email1": FieldEmail1, "emailaddress": FieldEmail1, "primaryemail": FieldEmail1,
	"email2": FieldEmail2, "secondaryemail": FieldEmail2, "alternateemail": FieldEmail2, "emailaddress2": FieldEmail2,

	"dateofbirth": FieldDateOfBirth, "dob": FieldDateOfBirth, "birthdate": FieldDateOfBirth, "birthday": FieldDateOfBirth,

	"phone": FieldPhone1, "phone1": FieldPhone1, "phonenumber": FieldPhone1, "telephone": FieldPhone1, "primaryphone": FieldPhone1,
	"phonetype": FieldPhone1Type, "phone1type": FieldPhone1Type,
	"phone2": FieldPhone2, "secondaryphone": FieldPhone2, "alternatephone": FieldPhone2, "phonenumber2": FieldPhone2,
	"phone2type": FieldPhone2Type,

	"address": FieldAddress1, "address1": FieldAddress1, "addressline1": FieldAddress1, "street": FieldAddress1, "streetaddress": FieldAddress1,
	"address2": FieldAddress2, "addressline2": FieldAddress2, "unit": FieldAddress2, "unitnumber": FieldAddress2, "apt": FieldAddress2, "apartment": FieldAddress2, "suite": FieldAddress2,
	"city": FieldCity, "town": FieldCity,
	"state": FieldState, "province": FieldState, "region": FieldState,
	"zip": FieldZip, "zipcode": FieldZip, "postalcode": FieldZip, "postcode": FieldZip,
	"country": FieldCountry,

	"address1alternate": FieldAddress1Alternate, "alternateaddress1": FieldAddress1Alternate, "alternateaddress": FieldAddress1Alternate,
	"address2alternate": FieldAddress2Alternate, "alternateaddress2": FieldAddress2Alternate,
	"cityalternate": FieldCityAlternate, "alternatecity": FieldCityAlternate,
	"statealternate": FieldStateAlternate, "alternatestate": FieldStateAlternate,
	"zipalternate": FieldZipAlternate, "alternatezip": FieldZipAlternate,
	"countryalternate": FieldCountryAlternate, "alternatecountry": FieldCountryAlternate,

	"notes": FieldNotes, "note": FieldNotes, "comments": FieldNotes, "comment": FieldNotes,
	"rentperiod": FieldRentPeriod, "rentfrequency": FieldRentPeriod,
	"xid": FieldXID, "pmsid": FieldXID, "externalid": FieldXID, "residentxid": FieldXID,
	"xpropertyid": FieldXPropertyID, "pmspropertyid": FieldXPropertyID, "externalpropertyid": FieldXPropertyID, "propertyxid": FieldXPropertyID,
	"rentdueday": FieldRentDueDay, "dueday": FieldRentDueDay, "rentday": FieldRentDueDay,
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
