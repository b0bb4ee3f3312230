package importer_test

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
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
		{importer.Resident{IntegrationID: "int_1", PropertyID: "prop_1", XID: " 100 ", Email1: "a@b.co"}, "x_id:int_1|prop_1|100"},
		{importer.Resident{IntegrationID: "int_1", XID: "100"}, "x_id:int_1||100"},
		{importer.Resident{IntegrationID: "int_1", Email1: "Ada@Example.COM", FirstName: "Ada"}, "email_1:int_1|ada@example.com"},
		{importer.Resident{IntegrationID: "int_1", FirstName: " Ada  Mae", LastName: "LOVELACE", DateOfBirth: "1985-12-10T00:00:00Z"}, "name+dob:int_1|ada mae|lovelace|1985-12-10"},
		{importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace"}, ""}, // no date of birth: no key
	} {
		got, ok := importer.MatchKeyOf(tt.r, on)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("MatchKeyOf(%+v) = %q, %v; want %q", tt.r, got, ok, tt.want)
		}
	}
}

// Residents of two integrations are different people's records, even with
// one email; an x_id means something only within its integration and
// property.
func TestKeysAreScopedToTheirIntegrationAndProperty(t *testing.T) {
	snap := importer.NewSnapshot()
	snap.Add(importer.ResidentRecord{ID: "res_b", Resident: importer.Resident{IntegrationID: "int_b", Email1: "ada@example.com", XID: "7", PropertyID: "prop_1"}})
	snap.Add(importer.ResidentRecord{ID: "res_a1", Resident: importer.Resident{IntegrationID: "int_a", XID: "7", PropertyID: "prop_1"}})
	snap.Add(importer.ResidentRecord{ID: "res_a2", Resident: importer.Resident{IntegrationID: "int_a", XID: "7", PropertyID: "prop_2"}})
	find := func(r importer.Resident, on string) []string {
		key, _ := importer.MatchKeyOf(r, importer.MatchKeys(on))
		var ids []string
		for _, rec := range snap.Find(key) {
			ids = append(ids, rec.ID)
		}
		return ids
	}
	if got := find(importer.Resident{IntegrationID: "int_a", Email1: "ADA@example.com"}, "email_1"); len(got) != 0 {
		t.Errorf("a row of int_a found %v of int_b by email", got)
	}
	if got := find(importer.Resident{IntegrationID: "int_b", Email1: "ADA@example.com"}, "email_1"); !slices.Equal(got, []string{"res_b"}) {
		t.Errorf("a row of int_b found %v, want res_b", got)
	}
	if got := find(importer.Resident{IntegrationID: "int_a", PropertyID: "prop_2", XID: "7"}, "x_id"); !slices.Equal(got, []string{"res_a2"}) {
		t.Errorf("x_id 7 in prop_2 found %v, want res_a2", got)
	}
	if got := find(importer.Resident{IntegrationID: "int_a", XID: "7"}, "x_id"); len(got) != 2 {
		t.Errorf("x_id 7 without a property found %v, want both of int_a (a conflict, never a guess)", got)
	}
	// The ledger finds what it wrote before keys carried their scope.
	// (Then a ledger key was the hash of "integration NUL kind:value".)
	before := sha256.Sum256([]byte("int_a\x00email_1:ada@example.com"))
	if got := importer.LedgerKey("int_a", "email_1:int_a|ada@example.com"); got != hex.EncodeToString(before[:12]) {
		t.Errorf("ledger key %s is not the one an earlier ledger holds", got)
	}
	if importer.LedgerKey("int_a", "email_1:int_a|ada@example.com") == importer.LedgerKey("int_b", "email_1:int_b|ada@example.com") {
		t.Error("ledger keys do not tell integrations apart")
	}
}

// own makes a row's resident whose every non-empty field the row gives
// itself, except those named default.
func own(r importer.Resident, defaulted ...string) importer.RowResident {
	out := importer.RowResident{Resident: r}
	for _, f := range r.Present() {
		if !slices.Contains(defaulted, f) {
			out.Own = append(out.Own, f)
		}
	}
	return out
}

func upsert() importer.Sync {
	return importer.Sync{Mode: importer.ModeUpsert, Vendor: importer.VendorGeneric, StaleAfter: importer.DefaultStaleAfter, Now: time.Now()}
}

func TestDecide(t *testing.T) {
	row := own(importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace", Email1: "ada@example.com", Phone1: "(555) 010-0000", Phone1Type: "MOBILE", Country: "United States"})
	same := importer.ResidentRecord{ID: "res_1", Resident: importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace",
		Email1: "ADA@example.com", Phone1: "555.010.0000", Phone1Type: "MOBILE", City: "London", Country: "US"}}
	moved := same
	moved.Phone1 = "555-999-0000"
	other := importer.ResidentRecord{ID: "res_2", Resident: same.Resident}
	sent := &importer.LedgerEntry{RecordID: "res_9", Sent: importer.SentHash(row.Resident), At: time.Now()}
	older := &importer.LedgerEntry{RecordID: "res_9", Sent: "something else", At: time.Now()}

	for _, tt := range []struct {
		name    string
		mode    importer.Mode
		matches []importer.ResidentRecord
		ledger  *importer.LedgerEntry
		action  importer.Action
		outcome importer.Outcome
		record  string
	}{
		{"same values, phone, email and country written otherwise", importer.ModeUpsert, []importer.ResidentRecord{same}, nil, importer.ActionNone, importer.Unchanged, "res_1"},
		{"a changed phone", importer.ModeUpsert, []importer.ResidentRecord{moved}, nil, importer.ActionUpdate, "", "res_1"},
		{"nobody", importer.ModeUpsert, nil, nil, importer.ActionCreate, "", ""},
		{"nobody, update only", importer.ModeUpdate, nil, nil, importer.ActionNone, importer.NotFound, ""},
		{"a match, create-missing", importer.ModeCreateMissing, []importer.ResidentRecord{moved}, nil, importer.ActionNone, importer.Unchanged, "res_1"},
		{"two residents", importer.ModeUpsert, []importer.ResidentRecord{same, other}, nil, importer.ActionNone, importer.Conflict, ""},
		{"not listed, written with these values", importer.ModeUpsert, nil, sent, importer.ActionNone, importer.Unchanged, "res_9"},
		{"not listed, written with others", importer.ModeUpsert, nil, older, importer.ActionUpdate, "", "res_9"},
		{"create mode looks nothing up", importer.ModeCreate, []importer.ResidentRecord{same}, nil, importer.ActionCreate, "", ""},
	} {
		s := upsert()
		s.Mode = tt.mode
		d := s.Decide(row, tt.matches, tt.ledger)
		if d.Action != tt.action || d.Outcome != tt.outcome || d.RecordID != tt.record {
			t.Errorf("%s: %+v; want %s %s %s", tt.name, d, tt.action, tt.outcome, tt.record)
		}
	}
	d := upsert().Decide(row, []importer.ResidentRecord{moved}, nil)
	if len(d.Changes) != 1 || d.Changes[0] != (importer.Change{Field: "phone_1", Old: "555-999-0000", New: "(555) 010-0000"}) {
		t.Errorf("changes = %+v, want only phone_1 (an empty city in the row erases nothing)", d.Changes)
	}
	if want := map[string]string{"phone_1": "(555) 010-0000", "phone_1_type": "MOBILE"}; !maps.Equal(d.Fields, want) {
		t.Errorf("the update sends %v, want %v: the number and, as the PUT requires, its type", d.Fields, want)
	}
}

// The rent terms are in no read: a sync never compares them, and a run's
// --rent-due-day (or the file's own) never overwrites a resident's 5 —
// unless the mapping says update, and then only when the row's terms
// differ from what the importer last sent.
func TestRentTermsAreWrittenOnCreateOnly(t *testing.T) {
	rec := importer.ResidentRecord{ID: "res_1", Resident: importer.Resident{IntegrationID: "int_1", PropertyID: "prop_1", FirstName: "Ada", LastName: "Lovelace"}}
	withDefaults := own(importer.Resident{IntegrationID: "int_1", PropertyID: "prop_1", FirstName: "Ada", LastName: "Lovelace", RentPeriod: "MONTHLY", RentDueDay: 1},
		"rent_period", "rent_due_day", "property_id")
	if d := upsert().Decide(withDefaults, []importer.ResidentRecord{rec}, nil); d.Outcome != importer.Unchanged {
		t.Errorf("the run's rent defaults: %+v, want unchanged", d)
	}
	fromFile := own(withDefaults.Resident)
	if d := upsert().Decide(fromFile, []importer.ResidentRecord{rec}, nil); d.Outcome != importer.Unchanged {
		t.Errorf("the file's own rent terms: %+v, want unchanged (on_create)", d)
	}
	s := upsert()
	s.Mapping = &importer.Mapping{Write: map[string]importer.WritePolicy{"rent_due_day": importer.WriteUpdate}}
	d := s.Decide(fromFile, []importer.ResidentRecord{rec}, nil)
	if d.Action != importer.ActionUpdate || !maps.Equal(d.Fields, map[string]string{"rent_due_day": "1"}) {
		t.Errorf("rent_due_day: update, never sent by the importer: %+v, want it sent alone", d)
	}
	ledger := &importer.LedgerEntry{RecordID: "res_1", Sent: importer.SentHash(fromFile.Resident), Blind: s.BlindHash(fromFile), At: time.Now()}
	if d := s.Decide(fromFile, []importer.ResidentRecord{rec}, ledger); d.Outcome != importer.Unchanged {
		t.Errorf("rent_due_day: update, sent before with this value: %+v, want unchanged", d)
	}
	if d := s.Decide(withDefaults, []importer.ResidentRecord{rec}, nil); d.Outcome != importer.Unchanged {
		t.Errorf("rent_due_day: update, from the run's default: %+v; defaults fill creates only", d)
	}
}

// An update carries only the PUT's fields, in its terms: no integration,
// property or lease; a phone_1 with a type the PUT takes (never OTHER);
// a country as US or CA; a state code.
func TestUpdatesAreInThePUTsTerms(t *testing.T) {
	rec := importer.ResidentRecord{ID: "res_1", Resident: importer.Resident{IntegrationID: "int_1", PropertyID: "prop_1", LastName: "Lovelace", Phone1: "5550100000", Country: "US", State: "TX"}}
	for _, tt := range []struct {
		name string
		row  importer.Resident
		sent map[string]string
		note string
	}{
		{"a new number of no type, the resident's none", importer.Resident{Phone1: "5559990000"}, nil, "phone_1 not sent"},
		{"a new number typed OTHER", importer.Resident{Phone1: "5559990000", Phone1Type: "OTHER"}, nil, "not \"OTHER\""},
		{"a new number typed WORK", importer.Resident{Phone1: "5559990000", Phone1Type: "work"}, map[string]string{"phone_1": "5559990000", "phone_1_type": "WORK"}, ""},
		{"a country spelled out", importer.Resident{Country: "Canada"}, map[string]string{"country": "CA"}, ""},
		{"the same country spelled out", importer.Resident{Country: "United States"}, nil, ""},
		{"a state by name", importer.Resident{State: "Ontario"}, nil, "state not sent"},
		{"a state code", importer.Resident{State: "on"}, map[string]string{"state": "ON"}, ""},
		{"a property and a lease", importer.Resident{PropertyID: "prop_2", LeaseID: "lease_1", LastName: "Byron"}, map[string]string{"last_name": "Byron"}, ""},
	} {
		tt.row.IntegrationID = "int_1"
		d := upsert().Decide(own(tt.row), []importer.ResidentRecord{rec}, nil)
		if !maps.Equal(d.Fields, tt.sent) && !(len(d.Fields) == 0 && len(tt.sent) == 0) || !strings.Contains(d.Note, tt.note) {
			t.Errorf("%s: sends %v, note %q; want %v and a note with %q", tt.name, d.Fields, d.Note, tt.sent, tt.note)
		}
		if len(tt.sent) == 0 && d.Action != importer.ActionNone {
			t.Errorf("%s: %s, want nothing sent", tt.name, d.Action)
		}
	}
	// With the resident's own type, the number goes with it.
	typed := rec
	typed.Phone1Type = "HOME"
	if d := upsert().Decide(own(importer.Resident{IntegrationID: "int_1", Phone1: "5559990000"}), []importer.ResidentRecord{typed}, nil); !maps.Equal(d.Fields, map[string]string{"phone_1": "5559990000", "phone_1_type": "HOME"}) {
		t.Errorf("a number with the resident's type: %v", d.Fields)
	}
}

func TestWritePolicies(t *testing.T) {
	rec := importer.ResidentRecord{ID: "res_1", Resident: importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace", Email1: "ada@example.com"}}
	row := own(importer.Resident{IntegrationID: "int_1", FirstName: "Augusta", LastName: "Lovelace", Email1: "ada@example.com", Email2: "ada@home.example", Notes: "VIP"})
	for _, tt := range []struct {
		policies map[string]importer.WritePolicy
		sent     map[string]string
		note     string
	}{
		{nil, map[string]string{"first_name": "Augusta", "email_2": "ada@home.example", "notes": "VIP"}, ""},
		{map[string]importer.WritePolicy{"first_name": importer.WriteOnCreate}, map[string]string{"email_2": "ada@home.example", "notes": "VIP"}, ""},
		{map[string]importer.WritePolicy{"first_name": importer.WriteFillIfBlank, "email_2": importer.WriteFillIfBlank}, map[string]string{"email_2": "ada@home.example", "notes": "VIP"}, ""},
		{map[string]importer.WritePolicy{"first_name": importer.WriteNeverOverwrite, "email_2": importer.WriteNeverOverwrite, "notes": importer.WriteOnCreate}, nil, `first_name kept (never_overwrite): the resident has "Ada", the row "Augusta"`},
	} {
		s := upsert()
		s.Mapping = &importer.Mapping{Write: tt.policies}
		d := s.Decide(row, []importer.ResidentRecord{rec}, nil)
		if !maps.Equal(d.Fields, tt.sent) && !(len(d.Fields) == 0 && len(tt.sent) == 0) || !strings.Contains(d.Note, tt.note) {
			t.Errorf("%v: sends %v, note %q; want %v and %q", tt.policies, d.Fields, d.Note, tt.sent, tt.note)
		}
	}
	for _, bad := range []struct{ field, policy, says string }{
		{"rent_due_day", "fill_if_blank", "never shows it"},
		{"property_id", "update", "does not take it"},
		{"x_id", "update", "scopes or matches"},
		{"notes", "sometimes", "not a write policy"},
	} {
		if _, err := importer.ParseWritePolicy(bad.field, bad.policy); err == nil || !strings.Contains(err.Error(), bad.says) {
			t.Errorf("ParseWritePolicy(%s, %s) = %v, want it to say %q", bad.field, bad.policy, err, bad.says)
		}
	}
}

// A resident not seen in the PMS for longer than --stale-after is no match:
// the row is created, and the note says whom it passed over.
func TestStaleResidentsAreNoMatch(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	row := own(importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace", Email1: "ada@example.com"})
	gone := importer.ResidentRecord{ID: "res_old", LastSeen: now.AddDate(0, 0, -45), Resident: importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "L", Email1: "ada@example.com"}}
	here := importer.ResidentRecord{ID: "res_new", LastSeen: now.AddDate(0, 0, -1), Resident: row.Resident}
	s := upsert()
	s.Now = now
	d := s.Decide(row, []importer.ResidentRecord{gone}, nil)
	if d.Action != importer.ActionCreate || !strings.Contains(d.Note, "res_old, last seen 2026-10-17") || !strings.Contains(d.Note, "30 days") {
		t.Errorf("only a stale match: %+v, want a create that says so", d)
	}
	if u, ok := d.Planned(); !ok || !u.Create || u.Note != d.Note {
		t.Errorf("the create's note is not kept for the report: %+v", u)
	}
	if d := s.Decide(row, []importer.ResidentRecord{gone, here}, nil); d.Outcome != importer.Unchanged || d.RecordID != "res_new" {
		t.Errorf("a stale and a fresh match: %+v, want the fresh one, no conflict", d)
	}
	s.StaleAfter = 0 // never
	if d := s.Decide(row, []importer.ResidentRecord{gone}, nil); d.Action != importer.ActionUpdate {
		t.Errorf("never stale: %+v, want the old resident updated", d)
	}
	for in, want := range map[string]time.Duration{"": 0, "30d": 0, "7d": 7 * 24 * time.Hour, "720h": 0, "never": importer.StaleNever, "48h": 48 * time.Hour} {
		if got, err := importer.ParseStaleAfter(in); err != nil || got != want {
			t.Errorf("ParseStaleAfter(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := importer.ParseStaleAfter("soon"); err == nil {
		t.Error("ParseStaleAfter took soon")
	}
}

// --blank-clears clears only what an update can clear with an empty value:
// not a name, an email, a date, a code, nor what the vendor requires or
// does not take.
func TestBlanksAreWhatTheUpdateCanClear(t *testing.T) {
	row := importer.Row{Values: map[string]string{"notes": "", "email_2": " ", "last_name": "", "first_name": "Ada", "middle_name": "", "address_2": ""}}
	s := upsert()
	s.Vendor = importer.VendorBuildium
	if got := s.Blanks(row, importer.Resident{FirstName: "Ada"}); strings.Join(got, ",") != "address_2" {
		t.Errorf("Buildium's Blanks = %v, want only address_2 (notes and middle_name: not taken; email_2: no empty email; last_name: a name)", got)
	}
	s.Vendor = importer.VendorGeneric
	if got := s.Blanks(row, importer.Resident{FirstName: "Ada"}); strings.Join(got, ",") != "middle_name,address_2,notes" {
		t.Errorf("generic Blanks = %v", got)
	}
}

func TestFailureCode(t *testing.T) {
	for _, tt := range []struct {
		errs []string
		want string
	}{
		{[]string{`The PMS is undergoing maintenance; try again later (503)`}, importer.CodeWriteFailed},
		{[]string{`Property "prop_9" was not found in Rent Manager (400)`}, importer.CodePMSRejected},
		{[]string{`Request timed out (408)`}, importer.CodeWriteFailed},
		{[]string{`Unit is required (422)`}, importer.CodePMSRejected},
		{nil, importer.CodeWriteFailed},
		{[]string{"something went wrong"}, importer.CodeWriteFailed},
	} {
		if got := importer.FailureCode(tt.errs); got != tt.want {
			t.Errorf("FailureCode(%q) = %s, want %s", tt.errs, got, tt.want)
		}
	}
}

func TestPlanSubscription(t *testing.T) {
	const url, secret = "https://importer.example.com/webhooks/propexo", "0123456789abc"
	now := time.Now()
	current := importer.WebhookSubscription{ID: "wh_1", URL: url, Triggers: []string{"DATA_UPDATE", "DATA_NEW", "WRITE_OPERATION_FAILURE"}, Model: "residents", Active: true, CreatedAt: now, SecretSHA256: importer.SecretSHA256(secret)}
	old := current
	old.ID, old.Triggers = "wh_0", []string{"WRITE_OPERATION_FAILURE", "DATA_NEW"}
	old.CreatedAt = now.Add(-time.Hour)
	other := current
	other.ID, other.URL = "wh_9", "https://elsewhere.example.com/"
	for _, tt := range []struct {
		name string
		subs []importer.WebhookSubscription
		want importer.SubscriptionPlan
	}{
		{"none", nil, importer.SubscriptionPlan{}},
		{"another URL's", []importer.WebhookSubscription{other}, importer.SubscriptionPlan{}},
		{"the same", []importer.WebhookSubscription{other, current}, importer.SubscriptionPlan{ID: "wh_1"}},
		{"an older one without DATA_UPDATE", []importer.WebhookSubscription{current, old}, importer.SubscriptionPlan{ID: "wh_0", Update: true}},
	} {
		if got := importer.PlanSubscription(tt.subs, url, secret); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if got := importer.PlanSubscription([]importer.WebhookSubscription{current}, url, "another-secret"); got != (importer.SubscriptionPlan{ID: "wh_1", Update: true}) {
		t.Errorf("another secret: %+v, want an update", got)
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

// A field the last night read and this file no longer fills is named; a
// full name and the first and last names fill each other (issue 22).
func TestDroppedColumns(t *testing.T) {
	before := importer.Import{Columns: []string{"Full Name", "E-mail", "Phone", "Notes"}, UnknownColumns: []string{"Notes"}}
	if got := importer.DroppedColumns(before, []string{"First Name", "Last Name", "E-mail", "Cell"}, []string{"Cell"}, nil); !slices.Equal(got, []string{"Phone (phone_1)"}) {
		t.Errorf("dropped %v, want the phone only", got)
	}
	if got := importer.DroppedColumns(before, []string{"Name", "Email", "Phone Number"}, nil, nil); len(got) != 0 {
		t.Errorf("dropped %v of columns only renamed to other aliases", got)
	}
}

// A recovered import (Redis lost it) finds the residents it created before
// the loss: those created since it first started, with the row's values,
// are its own creates — succeeded, not "unchanged" (issue 22).
func TestRecoveredImportFindsItsOwnCreates(t *testing.T) {
	row := own(importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace", Email1: "ada@example.com"})
	started := time.Now().Add(-time.Hour)
	rec := importer.ResidentRecord{ID: "res_1", Resident: row.Resident, CreatedAt: started.Add(time.Minute)}
	s := upsert()
	s.CreatedSince = started
	d := s.Decide(row, []importer.ResidentRecord{rec}, nil)
	if d.Outcome != importer.Succeeded || d.RecordID != "res_1" || !strings.Contains(d.Note, "created by this import") {
		t.Errorf("its own create: %+v", d)
	}
	if r := d.Result(1, 2); r.Action != importer.ActionCreate || r.Outcome != importer.Succeeded {
		t.Errorf("its own create's row: %+v", r)
	}
	var c importer.PlanCounts
	c.Add(d)
	if c.Create != 1 {
		t.Errorf("counted %+v, want one create", c)
	}
	rec.CreatedAt = started.Add(-time.Minute) // there before the import
	if d := s.Decide(row, []importer.ResidentRecord{rec}, nil); d.Outcome != importer.Unchanged {
		t.Errorf("a resident older than the import: %+v, want unchanged", d)
	}
	s.CreatedSince = time.Time{} // not a recovery
	rec.CreatedAt = started.Add(time.Minute)
	if d := s.Decide(row, []importer.ResidentRecord{rec}, nil); d.Outcome != importer.Unchanged {
		t.Errorf("an import not recovered: %+v, want unchanged", d)
	}
}

// A roster written before the one that last wrote a resident never
// overwrites it, listed or known from the ledger only; the same roster
// again, or a newer one, does.
func TestAnOlderRosterNeverOverwritesANewerOne(t *testing.T) {
	night1 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	night2 := night1.Add(24 * time.Hour)
	row := own(importer.Resident{IntegrationID: "int_1", FirstName: "Ada", LastName: "Lovelace", Email1: "ada@example.com", Phone1: "555-010-0000", Phone1Type: "MOBILE"})
	rec := importer.ResidentRecord{ID: "res_1", Resident: row.Resident}
	rec.Phone1 = "555-999-0000" // night 2's value
	ledger := &importer.LedgerEntry{RecordID: "res_1", Sent: "night 2's", At: night2.Add(time.Hour), AsOf: night2}
	for _, tt := range []struct {
		name    string
		asOf    time.Time
		matches []importer.ResidentRecord
		ledger  *importer.LedgerEntry
		outcome importer.Outcome
	}{
		{"night 1's roster after night 2", night1, []importer.ResidentRecord{rec}, ledger, importer.Superseded},
		{"night 1's roster, the resident known from the ledger only", night1, nil, ledger, importer.Superseded},
		{"night 2's roster again", night2, []importer.ResidentRecord{rec}, ledger, ""},
		{"night 3's roster", night2.Add(24 * time.Hour), []importer.ResidentRecord{rec}, ledger, ""},
		{"a roster of unknown age (standard input)", time.Time{}, []importer.ResidentRecord{rec}, ledger, ""},
		{"a ledger from before rosters had an age", night1, []importer.ResidentRecord{rec}, &importer.LedgerEntry{RecordID: "res_1", Sent: "x", At: night2}, ""},
		{"nothing written by a newer roster", night1, []importer.ResidentRecord{rec}, nil, ""},
	} {
		s := upsert()
		s.RosterAsOf = tt.asOf
		d := s.Decide(row, tt.matches, tt.ledger)
		if d.Outcome != tt.outcome {
			t.Errorf("%s: %+v, want outcome %q", tt.name, d, tt.outcome)
		}
		if tt.outcome == importer.Superseded {
			r := d.Result(1, 2)
			if r.ErrorCode != importer.CodeSuperseded || r.RecordID != "res_1" || r.Outcome.Fine() || !strings.Contains(r.Error, "older roster never overwrites") {
				t.Errorf("%s: the row's result %+v", tt.name, r)
			}
			var c importer.PlanCounts
			c.Add(d)
			if c.Superseded != 1 || c.NotFine() != 1 {
				t.Errorf("%s: counted %+v, want one superseded row, not fine", tt.name, c)
			}
		}
	}
}
