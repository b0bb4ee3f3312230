// Package importer is the domain of the resident importer: residents and the
// rows they come from, the vendors' rules, validation, outcomes, imports and
// their ids, and the small interfaces the domain needs from the outside (the
// write API and the import state store).
//
// It imports nothing but the standard library. The technology lives in
// subpackages of internal/ and in jobs/, which talk to each other only in the
// types defined here.
package importer

import (
	"strconv"
	"time"
)

// Resident is one resident as the write API takes it. Every field is a string
// as the API sends it, except RentDueDay; an empty value is not sent.
type Resident struct {
	IntegrationID     string `json:"integration_id"`
	PropertyID        string `json:"property_id,omitempty"`
	LeaseID           string `json:"lease_id,omitempty"`
	FirstName         string `json:"first_name,omitempty"`
	MiddleName        string `json:"middle_name,omitempty"`
	LastName          string `json:"last_name,omitempty"`
	Email1            string `json:"email_1,omitempty"`
	Email2            string `json:"email_2,omitempty"`
	DateOfBirth       string `json:"date_of_birth,omitempty"`
	Phone1            string `json:"phone_1,omitempty"`
	Phone1Type        string `json:"phone_1_type,omitempty"`
	Phone2            string `json:"phone_2,omitempty"`
	Phone2Type        string `json:"phone_2_type,omitempty"`
	Address1          string `json:"address_1,omitempty"`
	Address2          string `json:"address_2,omitempty"`
	City              string `json:"city,omitempty"`
	State             string `json:"state,omitempty"`
	Zip               string `json:"zip,omitempty"`
	Country           string `json:"country,omitempty"`
	Address1Alternate string `json:"address_1_alternate,omitempty"`
	Address2Alternate string `json:"address_2_alternate,omitempty"`
	CityAlternate     string `json:"city_alternate,omitempty"`
	StateAlternate    string `json:"state_alternate,omitempty"`
	ZipAlternate      string `json:"zip_alternate,omitempty"`
	CountryAlternate  string `json:"country_alternate,omitempty"`
	Notes             string `json:"notes,omitempty"`
	RentPeriod        string `json:"rent_period,omitempty"`
	RentDueDay        int    `json:"rent_due_day,omitempty"`
	// XID is the PMS's own id of the resident, when the file has it: a
	// key to match on, never sent (the API sets it; see Body).
	XID string `json:"x_id,omitempty"`
	// XPropertyID is the PMS's own id of the resident's property, when
	// the file has it: an x_id is unique only within its integration and
	// property, and the API's x_id filter needs it. Never sent.
	XPropertyID string `json:"x_property_id,omitempty"`
}

// Body is the resident as a create sends it: without x_id and
// x_property_id, which the API sets and does not take.
func (r Resident) Body() Resident {
	r.XID, r.XPropertyID = "", ""
	return r
}

// ResidentRecord is a resident as the API stores it: the fields written plus
// the ids the API gave it.
type ResidentRecord struct {
	ID string `json:"id"`
	Resident
	// CreatedAt is when the API's copy of the record was made;
	// UpdatedAt, when it last changed.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// LastSeen is when the API's cache last saw the resident in the PMS;
	// zero when the API did not say. A resident gone from the PMS keeps
	// its old one (the cache never deletes a record).
	LastSeen time.Time `json:"last_seen,omitzero"`
}

// Field names of the write API, as the JSON body spells them.
const (
	FieldIntegrationID     = "integration_id"
	FieldPropertyID        = "property_id"
	FieldLeaseID           = "lease_id"
	FieldFirstName         = "first_name"
	FieldMiddleName        = "middle_name"
	FieldLastName          = "last_name"
	FieldEmail1            = "email_1"
	FieldEmail2            = "email_2"
	FieldDateOfBirth       = "date_of_birth"
	FieldPhone1            = "phone_1"
	FieldPhone1Type        = "phone_1_type"
	FieldPhone2            = "phone_2"
	FieldPhone2Type        = "phone_2_type"
	FieldAddress1          = "address_1"
	FieldAddress2          = "address_2"
	FieldCity              = "city"
	FieldState             = "state"
	FieldZip               = "zip"
	FieldCountry           = "country"
	FieldAddress1Alternate = "address_1_alternate"
	FieldAddress2Alternate = "address_2_alternate"
	FieldCityAlternate     = "city_alternate"
	FieldStateAlternate    = "state_alternate"
	FieldZipAlternate      = "zip_alternate"
	FieldCountryAlternate  = "country_alternate"
	FieldNotes             = "notes"
	FieldRentPeriod        = "rent_period"
	FieldRentDueDay        = "rent_due_day"
	// FieldXID is the PMS's own id: read from a file to match on, never
	// sent; FieldXPropertyID, its property's.
	FieldXID         = "x_id"
	FieldXPropertyID = "x_property_id"
)

// textFields maps every string field of Resident to its API name, in the
// order the API reference lists them. RentDueDay, the one number, is handled
// apart.
var textFields = []struct {
	name string
	ptr  func(*Resident) *string
}{
	{FieldIntegrationID, func(r *Resident) *string { return &r.IntegrationID }},
	{FieldPropertyID, func(r *Resident) *string { return &r.PropertyID }},
	{FieldLeaseID, func(r *Resident) *string { return &r.LeaseID }},
	{FieldFirstName, func(r *Resident) *string { return &r.FirstName }},
	{FieldMiddleName, func(r *Resident) *string { return &r.MiddleName }},
	{FieldLastName, func(r *Resident) *string { return &r.LastName }},
	{FieldEmail1, func(r *Resident) *string { return &r.Email1 }},
	{FieldEmail2, func(r *Resident) *string { return &r.Email2 }},
	{FieldDateOfBirth, func(r *Resident) *string { return &r.DateOfBirth }},
	{FieldPhone1, func(r *Resident) *string { return &r.Phone1 }},
	{FieldPhone1Type, func(r *Resident) *string { return &r.Phone1Type }},
	{FieldPhone2, func(r *Resident) *string { return &r.Phone2 }},
	{FieldPhone2Type, func(r *Resident) *string { return &r.Phone2Type }},
	{FieldAddress1, func(r *Resident) *string { return &r.Address1 }},
	{FieldAddress2, func(r *Resident) *string { return &r.Address2 }},
	{FieldCity, func(r *Resident) *string { return &r.City }},
	{FieldState, func(r *Resident) *string { return &r.State }},
	{FieldZip, func(r *Resident) *string { return &r.Zip }},
	{FieldCountry, func(r *Resident) *string { return &r.Country }},
	{FieldAddress1Alternate, func(r *Resident) *string { return &r.Address1Alternate }},
	{FieldAddress2Alternate, func(r *Resident) *string { return &r.Address2Alternate }},
	{FieldCityAlternate, func(r *Resident) *string { return &r.CityAlternate }},
	{FieldStateAlternate, func(r *Resident) *string { return &r.StateAlternate }},
	{FieldZipAlternate, func(r *Resident) *string { return &r.ZipAlternate }},
	{FieldCountryAlternate, func(r *Resident) *string { return &r.CountryAlternate }},
	{FieldNotes, func(r *Resident) *string { return &r.Notes }},
	{FieldRentPeriod, func(r *Resident) *string { return &r.RentPeriod }},
	{FieldXID, func(r *Resident) *string { return &r.XID }},
	{FieldXPropertyID, func(r *Resident) *string { return &r.XPropertyID }},
}

// Get returns a field of the resident by its API name, as text ("" for an
// unknown name; rent_due_day as its digits, "" when not set).
func (r *Resident) Get(field string) string {
	if field == FieldRentDueDay {
		if r.RentDueDay == 0 {
			return ""
		}
		return strconv.Itoa(r.RentDueDay)
	}
	for _, f := range textFields {
		if f.name == field {
			return *f.ptr(r)
		}
	}
	return ""
}

// Set sets a field of the resident by its API name; it ignores an unknown
// name and a rent_due_day that is not a number.
func (r *Resident) Set(field, value string) {
	if field == FieldRentDueDay {
		r.RentDueDay, _ = strconv.Atoi(value)
		return
	}
	for _, f := range textFields {
		if f.name == field {
			*f.ptr(r) = value
			return
		}
	}
}

// Fields lists every field of Resident by its API name, in the order the
// API reference lists them, x_id and x_property_id last.
func Fields() []string {
	out := make([]string, 0, len(textFields)+1)
	for _, f := range textFields {
		if f.name == FieldXID {
			out = append(out, FieldRentDueDay)
		}
		out = append(out, f.name)
	}
	return out
}

// IsField reports whether name is a field of the write API's resident.
func IsField(name string) bool {
	if name == FieldRentDueDay {
		return true
	}
	for _, f := range textFields {
		if f.name == name {
			return true
		}
	}
	return false
}
