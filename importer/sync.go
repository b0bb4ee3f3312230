package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds sync: an import's mode, the keys a row is matched on, the
// snapshot of the residents that exist, the ledger of what the importer
// wrote, and the decision each row gets (create, update, or leave alone).

// Mode says what an import does with rows that match an existing resident
// and with rows that match nobody.
type Mode string

// The modes of an import.
const (
	// ModeUpsert updates a matched resident when a field differs (else
	// leaves it unchanged) and creates a row that matches nobody.
	ModeUpsert Mode = "upsert"
	// ModeCreateMissing leaves matched residents alone and creates the
	// rest.
	ModeCreateMissing Mode = "create-missing"
	// ModeUpdate updates matched residents; a row that matches nobody
	// ends not_found.
	ModeUpdate Mode = "update"
	// ModeCreate creates every row, looking nothing up.
	ModeCreate Mode = "create"
)

// Modes lists the modes, the default first.
var Modes = []Mode{ModeUpsert, ModeCreateMissing, ModeUpdate, ModeCreate}

// ParseMode accepts a mode in any case; empty is ModeUpsert.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	if m == "" {
		return ModeUpsert, nil
	}
	if slices.Contains(Modes, m) {
		return m, nil
	}
	names := make([]string, len(Modes))
	for i, known := range Modes {
		names[i] = string(known)
	}
	return "", fmt.Errorf("%q is not a mode: use one of %s", s, strings.Join(names, ", "))
}

// Matches reports whether the mode looks existing residents up.
func (m Mode) Matches() bool { return m != ModeCreate && m != "" }

// MatchKey names a way to tell that a row and a resident are the same
// person.
type MatchKey string

// The keys a row can be matched on.
const (
	// MatchXID: the PMS's own id (a file exported from the PMS has it).
	MatchXID MatchKey = "x_id"
	// MatchEmail: the first email, in any case.
	MatchEmail MatchKey = "email_1"
	// MatchNameDOB: first and last name (any case, spaces folded) and
	// the date of birth, all three.
	MatchNameDOB MatchKey = "name+dob"
)

// DefaultMatchOn is the default --match-on: a row is matched on the first
// of these keys it has.
const DefaultMatchOn = "x_id,email_1,name+dob"

// ParseMatchOn reads a comma-separated list of match keys and returns it in
// its normal spelling.
func ParseMatchOn(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return DefaultMatchOn, nil
	}
	var keys []string
	for _, part := range strings.Split(s, ",") {
		k := MatchKey(strings.ToLower(strings.TrimSpace(part)))
		switch k {
		case "email", "email1":
			k = MatchEmail
		case "xid":
			k = MatchXID
		case "name+date_of_birth", "name_dob":
			k = MatchNameDOB
		}
		switch k {
		case MatchXID, MatchEmail, MatchNameDOB:
		default:
			return "", fmt.Errorf("%q is not a match key: use x_id, email_1 or name+dob, comma-separated, in the order to try them", strings.TrimSpace(part))
		}
		if !slices.Contains(keys, string(k)) {
			keys = append(keys, string(k))
		}
	}
	return strings.Join(keys, ","), nil
}

// MatchKeys splits a normalized --match-on (see ParseMatchOn).
func MatchKeys(matchOn string) []MatchKey {
	if matchOn == "" {
		matchOn = DefaultMatchOn
	}
	var out []MatchKey
	for _, k := range strings.Split(matchOn, ",") {
		out = append(out, MatchKey(k))
	}
	return out
}

// keyValue is the resident's normalized value of a match key, and whether
// it has one.
func keyValue(r *Resident, k MatchKey) (string, bool) {
	switch k {
	case MatchXID:
		v := strings.TrimSpace(r.XID)
		return v, v != ""
	case MatchEmail:
		v := strings.ToLower(strings.TrimSpace(r.Email1))
		return v, v != ""
	case MatchNameDOB:
		first, last, dob := foldName(r.FirstName), foldName(r.LastName), day(r.DateOfBirth)
		if first == "" || last == "" || dob == "" {
			return "", false
		}
		return first + "|" + last + "|" + dob, true
	}
	return "", false
}

// foldName lowers a name and folds its runs of spaces into one.
func foldName(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// day is the YYYY-MM-DD of a date or timestamp.
func day(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 10 {
		return s[:10]
	}
	return s
}

// MatchKeyOf returns the key a row is matched on: the first of on that the
// resident has, as "kind:value" ("email_1:ada@example.com").
func MatchKeyOf(r Resident, on []MatchKey) (key string, ok bool) {
	for _, k := range on {
		if v, ok := keyValue(&r, k); ok {
			return string(k) + ":" + v, true
		}
	}
	return "", false
}

// KindOf is the kind of a match key: "email_1" of "email_1:ada@example.com".
func KindOf(key string) MatchKey {
	kind, _, _ := strings.Cut(key, ":")
	return MatchKey(kind)
}

// Snapshot is the residents of an import's scope as the API listed them,
// indexed by every match key.
type Snapshot struct {
	byID  map[string]ResidentRecord
	byKey map[string][]string
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{byID: map[string]ResidentRecord{}, byKey: map[string][]string{}}
}

// Add puts a listed resident in the snapshot; a second listing of one id
// replaces the first.
func (s *Snapshot) Add(rec ResidentRecord) {
	s.byID[rec.ID] = rec
	for _, k := range []MatchKey{MatchXID, MatchEmail, MatchNameDOB} {
		if v, ok := keyValue(&rec.Resident, k); ok {
			key := string(k) + ":" + v
			if !slices.Contains(s.byKey[key], rec.ID) {
				s.byKey[key] = append(s.byKey[key], rec.ID)
			}
		}
	}
}

// Len is the number of residents in the snapshot.
func (s *Snapshot) Len() int { return len(s.byID) }

// Find returns the residents a match key names.
func (s *Snapshot) Find(key string) []ResidentRecord {
	ids := s.byKey[key]
	out := make([]ResidentRecord, len(ids))
	for i, id := range ids {
		out[i] = s.byID[id]
	}
	return out
}

// LedgerEntry is what the importer remembers of a resident it wrote: its id,
// a hash of the fields it sent, and when the write succeeded. The ledger
// covers the time the API's cache lags the PMS: a resident created last
// night may not be listed yet tonight.
type LedgerEntry struct {
	RecordID string    `json:"id"`
	Sent     string    `json:"sent"`
	At       time.Time `json:"at"`
}

// LedgerKey is the ledger's name for a match key in an integration: a hash,
// so the ledger holds no personal data in the clear.
func LedgerKey(integrationID, key string) string {
	sum := sha256.Sum256([]byte(integrationID + "\x00" + key))
	return hex.EncodeToString(sum[:12])
}

// comparedFields are the fields a sync compares and sends: every field but
// the integration (the scope) and x_id (the PMS's, never sent).
func comparedFields() []string {
	var out []string
	for _, f := range Fields() {
		if f != FieldIntegrationID && f != FieldXID {
			out = append(out, f)
		}
	}
	return out
}

// Present lists the fields a sync compares that the resident has a value
// for: the row's own and the import's defaults. An empty cell is not one
// of them, so it never erases a value.
func (r *Resident) Present() []string {
	var out []string
	for _, f := range comparedFields() {
		if r.Get(f) != "" {
			out = append(out, f)
		}
	}
	return out
}

// SentHash hashes the values of the resident's present fields, as they are
// compared: the ledger keeps it to tell a row that changed since it was
// written.
func SentHash(r Resident) string {
	h := sha256.New()
	for _, f := range r.Present() {
		h.Write([]byte(f + "=" + comparable(f, r.Get(f)) + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// comparable is a field's value as a sync compares it: emails and codes in
// any case, dates by the day, phone numbers by their digits.
func comparable(field, v string) string {
	v = strings.TrimSpace(v)
	switch field {
	case FieldEmail1, FieldEmail2, FieldState, FieldCountry, FieldStateAlternate, FieldCountryAlternate,
		FieldRentPeriod, FieldPhone1Type, FieldPhone2Type:
		return strings.ToLower(v)
	case FieldDateOfBirth:
		return day(v)
	case FieldPhone1, FieldPhone2:
		var b strings.Builder
		for _, c := range v {
			if c >= '0' && c <= '9' {
				b.WriteRune(c)
			}
		}
		return b.String()
	}
	return v
}

// Change is one field a row changes in its resident.
type Change struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Diff lists the fields the row has whose value differs from the record's,
// and the blank fields (see Blanks) the record has a value for: those are
// cleared.
func Diff(rec ResidentRecord, r Resident, blanks []string) []Change {
	var out []Change
	for _, f := range r.Present() {
		if old, now := rec.Get(f), r.Get(f); comparable(f, old) != comparable(f, now) {
			out = append(out, Change{Field: f, Old: old, New: now})
		}
	}
	for _, f := range blanks {
		if old := rec.Get(f); old != "" {
			out = append(out, Change{Field: f, Old: old})
		}
	}
	return out
}

// Blanks are the fields a row leaves empty in a column it has, that a sync
// with --blank-clears clears: not the integration or x_id, not a field the
// import's defaults fill, not one the vendor requires, and not one its
// create does not take (never sent, so never cleared).
func Blanks(row Row, r Resident, vendor Vendor) []string {
	rules := vendor.Rules()
	var out []string
	for _, f := range comparedFields() {
		v, has := row.Values[f]
		if !has || strings.TrimSpace(v) != "" || r.Get(f) != "" || !vendor.Takes(f) || slices.Contains(rules.Required, f) || slices.Contains(rules.UpdateRequired, f) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// Action is what an import does with a row.
type Action string

// The actions of a row.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionNone   Action = "none"
)

// Decision is what a sync does with one row, and why.
type Decision struct {
	Action Action `json:"action"`
	// Outcome is the row's outcome when nothing is written (unchanged,
	// conflict, not_found); empty for a write.
	Outcome Outcome `json:"outcome,omitempty"`
	// RecordID is the matched resident.
	RecordID string `json:"record_id,omitempty"`
	// Candidates are the residents a conflicting key matched.
	Candidates []string `json:"candidates,omitempty"`
	// Changes are the fields an update changes; for a resident known only
	// from the ledger, every field the row has (their old values unknown).
	Changes []Change `json:"changes,omitempty"`
	// Note says why, for the report.
	Note string `json:"note,omitempty"`
}

// Result is the row's outcome for a decision that writes nothing.
func (d Decision) Result(row, line int) RowResult {
	r := RowResult{Row: row, Line: line, Outcome: d.Outcome, Action: ActionNone, RecordID: d.RecordID, Error: d.Note}
	switch d.Outcome {
	case Conflict:
		r.ErrorCode = CodeConflict
	case NotFound:
		r.ErrorCode = CodeNotFound
	case Duplicate:
		r.ErrorCode = CodeDuplicate
	}
	return r
}

// Decide chooses what a sync in mode does with a row's resident r, given
// the residents its match key found in the snapshot and what the ledger
// remembers of the key (nil: nothing). A key that finds several residents
// is a conflict: the importer never guesses.
func Decide(mode Mode, r Resident, blanks []string, matches []ResidentRecord, ledger *LedgerEntry) Decision {
	if !mode.Matches() {
		return Decision{Action: ActionCreate}
	}
	switch {
	case len(matches) > 1:
		ids := make([]string, len(matches))
		for i, m := range matches {
			ids[i] = m.ID
		}
		return Decision{Action: ActionNone, Outcome: Conflict, Candidates: ids,
			Note: fmt.Sprintf("the key matches %d residents (%s); make the row's key unique or fix the PMS", len(ids), strings.Join(ids, ", "))}
	case len(matches) == 0 && ledger == nil:
		if mode == ModeUpdate {
			return Decision{Action: ActionNone, Outcome: NotFound, Note: "no resident matches the row's key"}
		}
		return Decision{Action: ActionCreate}
	case len(matches) == 0:
		// Written by the importer, not listed (yet): the API's cache lags.
		if mode == ModeCreateMissing {
			return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: ledger.RecordID, Note: "exists (the importer created it); create-missing leaves it alone"}
		}
		if ledger.Sent == SentHash(r) {
			return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: ledger.RecordID, Note: "the importer wrote these values already"}
		}
		var changes []Change
		for _, f := range r.Present() {
			changes = append(changes, Change{Field: f, New: r.Get(f)})
		}
		for _, f := range blanks {
			changes = append(changes, Change{Field: f})
		}
		return Decision{Action: ActionUpdate, RecordID: ledger.RecordID, Changes: changes}
	}
	rec := matches[0]
	if mode == ModeCreateMissing {
		return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: rec.ID, Note: "exists; create-missing leaves it alone"}
	}
	changes := Diff(rec, r, blanks)
	if len(changes) == 0 {
		return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: rec.ID}
	}
	if ledger != nil && ledger.RecordID == rec.ID && ledger.Sent == SentHash(r) && ledger.At.After(rec.UpdatedAt) {
		// The importer sent these values after the API's copy was read
		// from the PMS: the copy lags, the resident has them.
		return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: rec.ID, Note: "the importer wrote these values already; the API's copy lags"}
	}
	return Decision{Action: ActionUpdate, RecordID: rec.ID, Changes: changes}
}

// DefaultPhoneType is the type an update gives a phone number when neither
// the row nor the resident has one: the API requires one beside a number.
const DefaultPhoneType = "OTHER"

// UpdateOf is the body of the update a decision sends: the changed fields,
// the fields the vendor's update requires (the row's value, else the
// record's), and a phone's type beside its number.
func UpdateOf(vendor Vendor, r Resident, rec *ResidentRecord, changes []Change) Resident {
	out := Resident{IntegrationID: r.IntegrationID}
	fields := map[string]bool{}
	for _, c := range changes {
		if c.New != "" { // a field cleared is sent as null (Update.Clear)
			fields[c.Field] = true
		}
	}
	for _, f := range vendor.Rules().UpdateRequired {
		fields[f] = true
	}
	if fields[FieldPhone1] {
		fields[FieldPhone1Type] = true
	}
	if fields[FieldPhone2] {
		fields[FieldPhone2Type] = true
	}
	for f := range fields {
		v := r.Get(f)
		if v == "" && rec != nil {
			v = rec.Get(f)
		}
		out.Set(f, v)
	}
	// The API requires a phone's type beside its number; neither the row
	// nor the resident says it: OTHER claims nothing.
	if out.Phone1 != "" && out.Phone1Type == "" {
		out.Phone1Type = DefaultPhoneType
	}
	if out.Phone2 != "" && out.Phone2Type == "" {
		out.Phone2Type = DefaultPhoneType
	}
	return out
}

// Guard caps how many rows of an import a plan may create or update before
// the import refuses to write anything: a number of rows, or a percentage
// of the file's. The zero Guard allows any number.
type Guard struct {
	N       int  `json:"n,omitempty"`
	Percent bool `json:"percent,omitempty"`
}

// ParseGuard reads "500" or "10%"; empty is no guard.
func ParseGuard(s string) (Guard, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Guard{}, nil
	}
	pct := strings.HasSuffix(s, "%")
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || n < 0 || (pct && n > 100) {
		return Guard{}, fmt.Errorf("%q: use a number of rows (500) or a percentage of the file's rows (10%%)", s)
	}
	if n == 0 && !pct {
		return Guard{N: 0, Percent: true}, nil // "0": nothing allowed, as 0%
	}
	return Guard{N: n, Percent: pct}, nil
}

// ParseGuards reads an import's two guards, naming a bad one by its field
// (max_creates, max_updates) in an *OptionError.
func ParseGuards(maxCreates, maxUpdates string) (creates, updates Guard, err error) {
	if creates, err = ParseGuard(maxCreates); err != nil {
		return creates, updates, &OptionError{Field: "max_creates", Err: err}
	}
	if updates, err = ParseGuard(maxUpdates); err != nil {
		return creates, updates, &OptionError{Field: "max_updates", Err: err}
	}
	return creates, updates, nil
}

// Set reports whether the guard caps anything.
func (g Guard) Set() bool { return g.N > 0 || g.Percent }

// Limit is the most rows the guard allows out of total.
func (g Guard) Limit(total int) int {
	switch {
	case !g.Set():
		return math.MaxInt
	case g.Percent:
		return total * g.N / 100
	}
	return g.N
}

func (g Guard) String() string {
	if g.Percent {
		return strconv.Itoa(g.N) + "%"
	}
	return strconv.Itoa(g.N)
}

// PlanCounts counts what a plan does with an import's rows.
type PlanCounts struct {
	Total     int `json:"total"`
	Create    int `json:"create"`
	Update    int `json:"update"`
	Unchanged int `json:"unchanged"`
	Conflict  int `json:"conflict"`
	NotFound  int `json:"not_found"`
	Invalid   int `json:"invalid"`
	Duplicate int `json:"duplicate"`
}

// Add counts one row's decision.
func (c *PlanCounts) Add(d Decision) {
	switch {
	case d.Action == ActionCreate:
		c.Create++
	case d.Action == ActionUpdate:
		c.Update++
	case d.Outcome == Unchanged:
		c.Unchanged++
	case d.Outcome == Conflict:
		c.Conflict++
	case d.Outcome == NotFound:
		c.NotFound++
	case d.Outcome == Duplicate:
		c.Duplicate++
	}
}

// GuardError refuses a plan that writes more rows than a guard allows.
type GuardError struct {
	// Field is max_creates or max_updates.
	Field  string
	Guard  Guard
	Count  int
	Total  int
	Action Action
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("the plan would %s %d of %d rows, more than %s allows (%s); nothing was written: check the file's key columns, or raise the limit",
		e.Action, e.Count, e.Total, e.Field, e.Guard)
}

// CheckGuards refuses counts past a guard, creates first.
func CheckGuards(c PlanCounts, maxCreates, maxUpdates Guard) error {
	if c.Create > maxCreates.Limit(c.Total) {
		return &GuardError{Field: "max_creates", Guard: maxCreates, Count: c.Create, Total: c.Total, Action: ActionCreate}
	}
	if c.Update > maxUpdates.Limit(c.Total) {
		return &GuardError{Field: "max_updates", Guard: maxUpdates, Count: c.Update, Total: c.Total, Action: ActionUpdate}
	}
	return nil
}

// Update is a row's planned update: the resident it writes to, the fields
// it changes (old → new), the body sent, and the fields it clears (sent as
// null: --blank-clears).
type Update struct {
	RecordID string   `json:"id"`
	Changes  []Change `json:"changes,omitempty"`
	Body     Resident `json:"body"`
	Clear    []string `json:"clear,omitempty"`
}

// UpdateFor is the planned update of a decision: its body (see UpdateOf)
// and the fields it clears.
func UpdateFor(vendor Vendor, r Resident, rec *ResidentRecord, d Decision) Update {
	u := Update{RecordID: d.RecordID, Changes: d.Changes, Body: UpdateOf(vendor, r, rec, d.Changes)}
	for _, c := range d.Changes {
		if c.New == "" {
			u.Clear = append(u.Clear, c.Field)
		}
	}
	return u
}

// DefaultLedgerRetention is how long the ledger remembers a write: a
// little over a year, so a yearly roster still finds last year's residents.
const DefaultLedgerRetention = 400 * 24 * time.Hour

// ActionOf is the action of a row as the report shows it: the plan's
// update, else what its outcome tells (a row written without a plan was a
// create; one never sent, none).
func ActionOf(r RowResult, planned bool) Action {
	switch {
	case r.Action != "":
		return r.Action
	case r.Outcome == "":
		return ""
	case planned:
		return ActionUpdate
	case r.Outcome == Invalid || r.Outcome == Duplicate || r.Outcome == Cancelled || r.Outcome == Unchanged ||
		r.Outcome == Conflict || r.Outcome == NotFound:
		return ActionNone
	}
	return ActionCreate
}

// SnapshotPage is one page of a snapshot's listing: where it was read (the
// scope and offset), whether more follow in its scope, and its residents.
type SnapshotPage struct {
	Scope  ListScope `json:"scope"`
	Offset int       `json:"offset"`
	More   bool      `json:"more"`
	// Total is the scope's residents as the API counted them; -1 when it
	// did not say.
	Total   int              `json:"total"`
	Records []ResidentRecord `json:"records"`
}

// Whole reports whether the page lists its scope unfiltered: only a
// snapshot of whole scopes tells who is missing from a file.
func (p SnapshotPage) Whole() bool { return p.Scope.XID == "" && p.Scope.Email == "" }

// FilterOf is the listing that finds a match key's residents with one
// request (x_id= or email_1=), and false for a key no filter finds
// (name+dob).
func FilterOf(scope ListScope, key string) (ListScope, bool) {
	kind, value, _ := strings.Cut(key, ":")
	switch MatchKey(kind) {
	case MatchXID:
		scope.XID = value
	case MatchEmail:
		scope.Email = value
	default:
		return scope, false
	}
	return scope, true
}
