package sandbox

// The sandbox's own wire types. They are written from the API page, not
// shared with the client, so that a contract mismatch between the two shows
// up in tests.

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details *errorDetails `json:"details,omitempty"`
}

type errorDetails struct {
	Issues []issue `json:"issues"`
}

type issue struct {
	Code    string   `json:"code"`
	Path    []string `json:"path"`
	Message string   `json:"message"`
}

// writeAnswer is a write's answer as the published file has it.
type writeAnswer struct {
	JobID string   `json:"job_id"`
	Data  resident `json:"data"`
}

// metaAnswer is a write's answer as the docs pages and the video show it,
// which the file does not list (the AnswerMeta variant).
type metaAnswer struct {
	Meta   createMeta `json:"meta"`
	Result resident   `json:"result"`
}

type createMeta struct {
	JobID string `json:"job_id"`
}

type writeStatusAnswer struct {
	WriteStatus     string   `json:"write_status"`
	Errors          []string `json:"errors"`
	CreatedRecordID *string  `json:"created_record_id"`
}

type retryAnswer struct {
	Success bool   `json:"success"`
	JobID   string `json:"job_id"`
}

type oneAnswer struct {
	Meta    listMeta  `json:"meta"`
	Results readModel `json:"results"`
}

type listAnswer struct {
	Meta    listMeta    `json:"meta"`
	Results []readModel `json:"results"`
}

// listMeta is the meta of a list (and, as the reference shows it, of a get
// by id too). orderBy is an array of objects in every documented example;
// hasMore may be null, and total missing, under the HasMoreNull variant.
type listMeta struct {
	OrderBy []map[string]any `json:"orderBy"`
	Offset  int              `json:"offset"`
	Limit   int              `json:"limit"`
	HasMore *bool            `json:"hasMore"`
	Total   *int             `json:"total,omitempty"`
}

// newListMeta is the meta of a page of total records from offset.
func newListMeta(v Variants, offset, limit, shown, total int) listMeta {
	m := listMeta{OrderBy: []map[string]any{}, Offset: offset, Limit: limit}
	if v.HasMore == HasMoreBool {
		more := offset+shown < total
		m.HasMore, m.Total = &more, &total
	}
	return m
}

type integrationsAnswer struct {
	Meta    listMeta      `json:"meta"`
	Results []integration `json:"results"`
}

type integration struct {
	ID     string `json:"id"`
	Vendor string `json:"vendor"`
	Active bool   `json:"active"`
	System string `json:"system"`
	// MaxJobConcurrency is published only when the sandbox is told one.
	MaxJobConcurrency int `json:"max_job_concurrency,omitempty"`
}

type propertiesAnswer struct {
	Meta    listMeta   `json:"meta"`
	Results []property `json:"results"`
}

type property struct {
	ID            string `json:"id"`
	IntegrationID string `json:"integration_id"`
	Name          string `json:"name"`
}

// resident is a resident as the PMS holds it: every field a write may
// carry, the ids the API gave it, and when the API's cache last saw it in
// the PMS. A nil pointer is a null. The API shows it as its readModel.
type resident struct {
	ID                *string `json:"id"`
	CreatedAt         *string `json:"created_at"`
	UpdatedAt         *string `json:"updated_at"`
	XID               *string `json:"x_id"`
	IntegrationID     *string `json:"integration_id"`
	IntegrationVendor *string `json:"integration_vendor"`
	PropertyID        *string `json:"property_id"`
	LeaseID           *string `json:"lease_id"`
	FirstName         *string `json:"first_name"`
	MiddleName        *string `json:"middle_name"`
	LastName          *string `json:"last_name"`
	Email1            *string `json:"email_1"`
	Email2            *string `json:"email_2"`
	DateOfBirth       *string `json:"date_of_birth"`
	Phone1            *string `json:"phone_1"`
	Phone1Type        *string `json:"phone_1_type"`
	Phone2            *string `json:"phone_2"`
	Phone2Type        *string `json:"phone_2_type"`
	Address1          *string `json:"address_1"`
	Address2          *string `json:"address_2"`
	City              *string `json:"city"`
	State             *string `json:"state"`
	Zip               *string `json:"zip"`
	Country           *string `json:"country"`
	Address1Alternate *string `json:"address_1_alternate"`
	Address2Alternate *string `json:"address_2_alternate"`
	CityAlternate     *string `json:"city_alternate"`
	StateAlternate    *string `json:"state_alternate"`
	ZipAlternate      *string `json:"zip_alternate"`
	CountryAlternate  *string `json:"country_alternate"`
	Notes             *string `json:"notes"`
	RentPeriod        *string `json:"rent_period"`
	RentDueDay        *int    `json:"rent_due_day"`
	// LastSeen is when the API's cache last read the resident from the
	// PMS: a resident gone from the PMS keeps its last one.
	LastSeen *string `json:"last_seen,omitempty"`
}

// readModel is a resident as get and list show it: the published file's
// read model, every field present (null where unknown). It has no
// rent_period, rent_due_day, lease_id or attachments: those can be
// written, never read back.
type readModel struct {
	ID                 *string        `json:"id"`
	CreatedAt          *string        `json:"created_at"`
	UpdatedAt          *string        `json:"updated_at"`
	LastSeen           *string        `json:"last_seen"`
	XID                *string        `json:"x_id"`
	XLeaseID           *string        `json:"x_lease_id"`
	Address1Alternate  *string        `json:"address_1_alternate"`
	Address1           *string        `json:"address_1"`
	Address2Alternate  *string        `json:"address_2_alternate"`
	Address2           *string        `json:"address_2"`
	BalanceInCents     *float64       `json:"balance_in_cents"`
	CityAlternate      *string        `json:"city_alternate"`
	City               *string        `json:"city"`
	CountryAlternate   *string        `json:"country_alternate"`
	Country            *string        `json:"country"`
	CustomData         map[string]any `json:"custom_data"`
	DateOfBirth        *string        `json:"date_of_birth"`
	Email1             *string        `json:"email_1"`
	Email2             *string        `json:"email_2"`
	FirstName          *string        `json:"first_name"`
	IsEmployee         *bool          `json:"is_employee"`
	LastName           *string        `json:"last_name"`
	LateBalanceInCents *float64       `json:"late_balance_in_cents"`
	MiddleName         *string        `json:"middle_name"`
	Notes              *string        `json:"notes"`
	Phone1Type         *string        `json:"phone_1_type"`
	Phone1             *string        `json:"phone_1"`
	Phone2Type         *string        `json:"phone_2_type"`
	Phone2             *string        `json:"phone_2"`
	StateAlternate     *string        `json:"state_alternate"`
	State              *string        `json:"state"`
	ZipAlternate       *string        `json:"zip_alternate"`
	Zip                *string        `json:"zip"`
	Pets               []any          `json:"pets"`
	Vehicles           []any          `json:"vehicles"`
	IntegrationID      *string        `json:"integration_id"`
	IntegrationVendor  *string        `json:"integration_vendor"`
	PropertyID         string         `json:"property_id"`
}

// read is the read model of a resident the PMS holds.
func (r resident) read() readModel {
	return readModel{
		ID: r.ID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, LastSeen: r.LastSeen, XID: r.XID,
		Address1Alternate: r.Address1Alternate, Address1: r.Address1, Address2Alternate: r.Address2Alternate, Address2: r.Address2,
		CityAlternate: r.CityAlternate, City: r.City, CountryAlternate: r.CountryAlternate, Country: r.Country,
		DateOfBirth: r.DateOfBirth, Email1: r.Email1, Email2: r.Email2, FirstName: r.FirstName, LastName: r.LastName,
		MiddleName: r.MiddleName, Notes: r.Notes, Phone1Type: r.Phone1Type, Phone1: r.Phone1, Phone2Type: r.Phone2Type, Phone2: r.Phone2,
		StateAlternate: r.StateAlternate, State: r.State, ZipAlternate: r.ZipAlternate, Zip: r.Zip,
		Pets: []any{}, Vehicles: []any{}, IntegrationID: r.IntegrationID, IntegrationVendor: r.IntegrationVendor, PropertyID: str(r.PropertyID),
	}
}

// vendorTakes lists, per vendor path, the fields its create and update
// take (Rent Manager's, Propertyware REST's and Buildium's pages): any
// other key is a 400 unless ignore_unknown_fields=true.
var vendorTakes = map[string]map[string]bool{
	"rentmanager": fieldSet([]string{"integration_id", "property_id", "rent_period", "rent_due_day", "first_name", "middle_name", "last_name", "notes"},
		contact, address, alternate),
	"propertyware_rest": fieldSet([]string{"integration_id", "first_name", "middle_name", "last_name", "notes"}, contact, address),
	"buildium":          fieldSet([]string{"integration_id", "lease_id", "first_name", "last_name"}, contact, address, alternate),
}

// The field groups most vendors take.
var (
	contact   = []string{"email_1", "email_2", "date_of_birth", "phone_1", "phone_1_type", "phone_2", "phone_2_type"}
	address   = []string{"address_1", "address_2", "city", "state", "zip", "country"}
	alternate = []string{"address_1_alternate", "address_2_alternate", "city_alternate", "state_alternate", "zip_alternate", "country_alternate"}
)

// fieldSet is the set of the names in groups.
func fieldSet(groups ...[]string) map[string]bool {
	set := map[string]bool{}
	for _, g := range groups {
		for _, n := range g {
			set[n] = true
		}
	}
	return set
}

// writable lists the fields a create may carry.
var writable = map[string]bool{
	"integration_id": true, "property_id": true, "lease_id": true,
	"first_name": true, "middle_name": true, "last_name": true,
	"email_1": true, "email_2": true, "date_of_birth": true,
	"phone_1": true, "phone_1_type": true, "phone_2": true, "phone_2_type": true,
	"address_1": true, "address_2": true, "city": true, "state": true, "zip": true, "country": true,
	"address_1_alternate": true, "address_2_alternate": true, "city_alternate": true,
	"state_alternate": true, "zip_alternate": true, "country_alternate": true,
	"notes": true, "rent_period": true, "rent_due_day": true,
}
