package importer

import (
	"fmt"
	"slices"
	"strings"
)

// This file holds what a sync may write to a resident that exists, field
// by field: what the API lets it read back and compare, what its update
// (the generic PUT /v1/residents/{id}) takes and in which terms, and the
// write policy of each field (the mapping's write: can change it).

// WritePolicy says when a sync writes a field.
type WritePolicy string

// The write policies.
const (
	// WriteUpdate compares the field with the resident's and sends it when
	// it differs: the default of every field the API reads back and its
	// update takes. For a field no read shows (the rent terms), it is sent
	// when the row's value differs from what the importer last sent (the
	// ledger), or when the importer never sent one.
	WriteUpdate WritePolicy = "update"
	// WriteOnCreate writes the field when the row creates a resident, and
	// never to one that exists: the default of every field no read shows
	// (rent_period, rent_due_day, lease_id) or no update takes
	// (property_id).
	WriteOnCreate WritePolicy = "on_create"
	// WriteFillIfBlank writes the field to a resident that exists only
	// where the resident has no value for it: a value it has is never
	// replaced (HubSpot's "don't overwrite existing values").
	WriteFillIfBlank WritePolicy = "fill_if_blank"
	// WriteNeverOverwrite never writes the field to a resident that
	// exists, blank or not; a value that differs is reported in the plan
	// and the report, so the difference is seen, not written.
	WriteNeverOverwrite WritePolicy = "never_overwrite"
)

// WritePolicies lists the policies, for messages.
var WritePolicies = []WritePolicy{WriteUpdate, WriteOnCreate, WriteFillIfBlank, WriteNeverOverwrite}

// readableFields are the fields of a resident the API's read model shows (get
// and list): only these can be compared with a row. The read model has no
// rent_period, rent_due_day, lease_id or attachments.
var readableFields = map[string]bool{
	FieldIntegrationID: true, FieldPropertyID: true, FieldXID: true,
	FieldFirstName: true, FieldMiddleName: true, FieldLastName: true,
	FieldEmail1: true, FieldEmail2: true, FieldDateOfBirth: true,
	FieldPhone1: true, FieldPhone1Type: true, FieldPhone2: true, FieldPhone2Type: true,
	FieldAddress1: true, FieldAddress2: true, FieldCity: true, FieldState: true, FieldZip: true, FieldCountry: true,
	FieldAddress1Alternate: true, FieldAddress2Alternate: true, FieldCityAlternate: true,
	FieldStateAlternate: true, FieldZipAlternate: true, FieldCountryAlternate: true,
	FieldNotes: true,
}

// updatable are the fields of the generic update's schema (the published
// file's PUT /v1/residents/{id}): no integration_id, property_id or
// lease_id, since a resident does not move that way.
var updatable = map[string]bool{
	FieldFirstName: true, FieldMiddleName: true, FieldLastName: true,
	FieldEmail1: true, FieldEmail2: true, FieldDateOfBirth: true,
	FieldPhone1: true, FieldPhone1Type: true, FieldPhone2: true, FieldPhone2Type: true,
	FieldAddress1: true, FieldAddress2: true, FieldCity: true, FieldState: true, FieldZip: true, FieldCountry: true,
	FieldAddress1Alternate: true, FieldAddress2Alternate: true, FieldCityAlternate: true,
	FieldStateAlternate: true, FieldZipAlternate: true, FieldCountryAlternate: true,
	FieldNotes: true, FieldRentPeriod: true, FieldRentDueDay: true,
}

// Readable reports whether the API's read model shows a field.
func Readable(field string) bool { return readableFields[field] }

// Updatable reports whether the API's update takes a field.
func Updatable(field string) bool { return updatable[field] }

// matchOnly are the fields that scope or match a row, never written by a
// policy.
func matchOnly(field string) bool {
	return field == FieldIntegrationID || field == FieldXID || field == FieldXPropertyID
}

// DefaultWritePolicy is a field's policy unless the mapping says another:
// update where the API reads the field back and its update takes it,
// on_create elsewhere.
func DefaultWritePolicy(field string) WritePolicy {
	if readableFields[field] && updatable[field] {
		return WriteUpdate
	}
	return WriteOnCreate
}

// ParseWritePolicy checks a mapping's policy for a field, with a message
// that says why a policy cannot apply to it.
func ParseWritePolicy(field, policy string) (WritePolicy, error) {
	p := WritePolicy(strings.ToLower(strings.TrimSpace(policy)))
	if !slices.Contains(WritePolicies, p) {
		names := make([]string, len(WritePolicies))
		for i, known := range WritePolicies {
			names[i] = string(known)
		}
		return "", fmt.Errorf("%s: %q is not a write policy: use one of %s", field, policy, strings.Join(names, ", "))
	}
	switch {
	case matchOnly(field):
		return "", fmt.Errorf("%s: it scopes or matches a row and is never written to a resident that exists", field)
	case p == WriteUpdate && !updatable[field]:
		return "", fmt.Errorf("%s: the API's update does not take it (a resident does not move to another property or lease that way): use on_create", field)
	case (p == WriteFillIfBlank || p == WriteNeverOverwrite) && !readableFields[field]:
		return "", fmt.Errorf("%s: the API never shows it, so whether it is blank or differs cannot be seen: use on_create, or update to send it whenever it differs from what the importer last sent", field)
	}
	return p, nil
}

// usPutStates are the state codes the update takes (the published file's
// enum, Ontario mended): US states and territories, military codes and
// Canada's provinces.
var putStates = strings.Fields(`AB BC MB NB NL NT NS NU ON PE QC SK YT AL AK AS AZ AR AA AE AP CA CO CT DE DC FL GA GU HI ID IL IN IA
KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND MP OH OK OR PA PR RI SC SD TN TX UM UT VT VI VA WA WV WI WY`)

// putPhone1Types are the types the update takes for phone_1: no OTHER
// (phone_2's take it).
var putPhone1Types = []string{"HOME", "WORK", "MOBILE", "FAX"}

// countryCode is a country as the update spells it (US, CA): a create
// takes "United States" and any text, the update only the codes.
func countryCode(v string) string {
	switch strings.ToUpper(strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == '.' || r == ' ' }), " ")) {
	case "US", "USA", "U S", "U S A", "UNITED STATES", "UNITED STATES OF AMERICA":
		return "US"
	case "CA", "CAN", "CANADA":
		return "CA"
	}
	return strings.ToUpper(strings.TrimSpace(v))
}

// putValue is a field's value as the update takes it, or why the update
// cannot take it (the PUT's enums: state codes, US or CA, phone_1 types
// without OTHER).
func putValue(field, v string) (string, error) {
	switch field {
	case FieldCountry:
		if c := countryCode(v); c == "US" || c == "CA" {
			return c, nil
		}
		return "", fmt.Errorf("the API's update takes only US or CA as a country, not %q", v)
	case FieldCountryAlternate:
		if countryCode(v) == "US" {
			return "US", nil
		}
		return "", fmt.Errorf("the API's update takes only US as an alternate country, not %q", v)
	case FieldState:
		if s := strings.ToUpper(strings.TrimSpace(v)); slices.Contains(putStates, s) {
			return s, nil
		}
		return "", fmt.Errorf("the API's update takes a 2-letter US or Canadian state code, not %q", v)
	case FieldPhone1Type:
		if t := strings.ToUpper(v); slices.Contains(putPhone1Types, t) {
			return t, nil
		}
		return "", fmt.Errorf("the API's update takes HOME, WORK, MOBILE or FAX as phone_1's type, not %q: map the file's phone types (values: in the mapping)", v)
	}
	return v, nil
}

// clearable reports whether an update can clear a field by sending an
// empty string: a plain text field of the PUT, not a name, an email, a
// date or an enum (those refuse an empty value), and not one no read
// shows. Whether the PMS clears a field sent empty is undocumented.
func clearable(field string) bool {
	switch field {
	case FieldMiddleName, FieldPhone2, FieldAddress2, FieldZip, FieldCity, FieldAddress1,
		FieldAddress1Alternate, FieldAddress2Alternate, FieldCityAlternate, FieldStateAlternate, FieldZipAlternate, FieldNotes:
		return true
	}
	return false
}
