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

// scopedKey is a match key within its scope: every key within its
// integration (residents of two integrations are different people's
// records, even with one email), an x_id within its property too (a PMS
// may number its records per property), as "kind:integration|value" or
// "x_id:integration|property|value".
func scopedKey(k MatchKey, integrationID, propertyID, value string) string {
	if k == MatchXID {
		return string(k) + ":" + integrationID + "|" + propertyID + "|" + value
	}
	return string(k) + ":" + integrationID + "|" + value
}

// MatchKeyOf returns the key a row is matched on: the first of on that the
// resident has, within its scope ("email_1:int_1|ada@example.com", see
// scopedKey). An x_id key is scoped to the row's property when it has one
// (property_id, the API's id of it); without one, an x_id that several
// properties of the integration hold is a conflict, never a guess.
func MatchKeyOf(r Resident, on []MatchKey) (key string, ok bool) {
	for _, k := range on {
		if v, ok := keyValue(&r, k); ok {
			return scopedKey(k, r.IntegrationID, r.PropertyID, v), true
		}
	}
	return "", false
}

// KindOf is the kind of a match key: "email_1" of "email_1:int_1|ada@example.com".
func KindOf(key string) MatchKey {
	kind, _, _ := strings.Cut(key, ":")
	return MatchKey(kind)
}

// Snapshot is the residents of an import's scope as the API listed them,
// indexed by every match key within its scope.
type Snapshot struct {
	byID  map[string]ResidentRecord
	byKey map[string][]string
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{byID: map[string]ResidentRecord{}, byKey: map[string][]string{}}
}

// Add puts a listed resident in the snapshot; a second listing of one id
// replaces the first. An x_id is indexed in the resident's property and
// without one (for a row that names none).
func (s *Snapshot) Add(rec ResidentRecord) {
	s.byID[rec.ID] = rec
	index := func(key string) {
		if !slices.Contains(s.byKey[key], rec.ID) {
			s.byKey[key] = append(s.byKey[key], rec.ID)
		}
	}
	for _, k := range []MatchKey{MatchXID, MatchEmail, MatchNameDOB} {
		if v, ok := keyValue(&rec.Resident, k); ok {
			index(scopedKey(k, rec.IntegrationID, rec.PropertyID, v))
			if k == MatchXID && rec.PropertyID != "" {
				index(scopedKey(k, rec.IntegrationID, "", v))
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
// night may not be listed yet tonight. Blind hashes the fields no read
// shows that the row's mapping updates (see WriteUpdate): the ledger is
// the only place their last value is known.
//
// AsOf is when the roster that wrote it was written (Import.RosterAsOf):
// a roster written before it never overwrites the resident (Superseded).
type LedgerEntry struct {
	RecordID string    `json:"id"`
	Sent     string    `json:"sent"`
	Blind    string    `json:"blind,omitempty"`
	At       time.Time `json:"at"`
	AsOf     time.Time `json:"as_of,omitzero"`
}

// LedgerKey is the ledger's name for a match key in an integration: a hash,
// so the ledger holds no personal data in the clear. The integration is
// hashed beside the key's value (an x_id's with its property), as before
// keys carried their scope: the ledgers written then are still found.
func LedgerKey(integrationID, key string) string {
	kind, rest, _ := strings.Cut(key, ":")
	rest = strings.TrimPrefix(rest, integrationID+"|")
	if MatchKey(kind) == MatchXID {
		rest = strings.TrimPrefix(rest, "|") // no property: as before
	}
	sum := sha256.Sum256([]byte(integrationID + "\x00" + kind + ":" + rest))
	return hex.EncodeToString(sum[:12])
}

// comparedFields are the fields the ledger's hash covers: every field but
// the integration (the scope) and the PMS's ids (never sent).
func comparedFields() []string {
	var out []string
	for _, f := range Fields() {
		if !matchOnly(f) {
			out = append(out, f)
		}
	}
	return out
}

// Present lists the fields of the resident that have a value, the row's
// own and the import's defaults alike (the ledger's hash covers them).
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
	return hashFields(&r, r.Present())
}

func hashFields(r *Resident, fields []string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f + "=" + comparable(f, r.Get(f)) + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// comparable is a field's value as a sync compares it: emails and codes in
// any case, a country by its code (United States is US), dates by the day,
// phone numbers by their digits.
func comparable(field, v string) string {
	v = strings.TrimSpace(v)
	switch field {
	case FieldEmail1, FieldEmail2, FieldState, FieldStateAlternate,
		FieldRentPeriod, FieldPhone1Type, FieldPhone2Type:
		return strings.ToLower(v)
	case FieldCountry, FieldCountryAlternate:
		if v == "" {
			return ""
		}
		return strings.ToLower(countryCode(v))
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

// RowResident is a row's resident as a sync decides it: the resident, and
// which of its fields the row itself gives (Own). The rest came from
// defaults — the mapping's constants, the run's --property-id,
// --rent-period, --rent-due-day — which fill a create only, never an
// update. Blanks are the fields the row clears (--blank-clears).
type RowResident struct {
	Resident
	Own    []string
	Blanks []string
}

// Sync decides what an import does with its rows: its mode, each field's
// write policy (the mapping's write:, else DefaultWritePolicy), and when a
// listed resident counts as gone from the PMS (its last_seen more than
// StaleAfter before Now).
type Sync struct {
	Mode       Mode
	Vendor     Vendor
	Mapping    *Mapping
	StaleAfter time.Duration
	Now        time.Time
	// CreatedSince, for an import recovered after Redis lost it, is when
	// it first started: a resident it matches that was created since, with
	// the row's values, is the import's own create, whose answer was lost
	// with Redis; the row succeeded, it is not "unchanged".
	CreatedSince time.Time
	// RosterAsOf is when the import's roster was written (see
	// Import.RosterAsOf); zero: not known, no row is superseded.
	RosterAsOf time.Time
}

// NewSync is the sync of an import, deciding at now.
func NewSync(imp Import, now time.Time) Sync {
	opts := imp.Options
	s := Sync{Mode: opts.Mode, Vendor: opts.Vendor, Mapping: opts.Mapping, StaleAfter: opts.StaleAfterOrDefault(), Now: now, RosterAsOf: imp.RosterAsOf}
	if imp.Recovery != nil {
		s.CreatedSince = imp.Recovery.FirstStartedAt
	}
	return s
}

// Policy is a field's write policy.
func (s Sync) Policy(field string) WritePolicy {
	if s.Mapping != nil {
		if p, ok := s.Mapping.Write[field]; ok {
			return p
		}
	}
	return DefaultWritePolicy(field)
}

// Stale reports whether a listed resident counts as gone from the PMS: not
// seen by the API's syncs for longer than StaleAfter (a resident whose
// last_seen the API does not give is not).
func (s Sync) Stale(rec ResidentRecord) bool {
	return s.StaleAfter > 0 && !rec.LastSeen.IsZero() && rec.LastSeen.Before(s.Now.Add(-s.StaleAfter))
}

// Blanks are the fields a row leaves empty in a column it has, that a sync
// with --blank-clears clears: only those an update can clear with an
// empty value (see clearable), whose policy is update, that the vendor's
// create takes and does not require, and that no default fills.
func (s Sync) Blanks(row Row, r Resident) []string {
	rules := s.Vendor.Rules()
	var out []string
	for _, f := range comparedFields() {
		v, has := row.Values[f]
		if !has || strings.TrimSpace(v) != "" || r.Get(f) != "" || !clearable(f) || s.Policy(f) != WriteUpdate ||
			!s.Vendor.Takes(f) || slices.Contains(rules.Required, f) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// BlindHash hashes the row's own values of the fields no read shows that
// its policy updates: the ledger keeps it, to tell when they changed.
func (s Sync) BlindHash(r RowResident) string {
	blind := s.blindFields(r)
	if len(blind) == 0 {
		return ""
	}
	return hashFields(&r.Resident, blind)
}

func (s Sync) blindFields(r RowResident) []string {
	var out []string
	for _, f := range r.Own {
		if !readableFields[f] && updatable[f] && s.Policy(f) == WriteUpdate {
			out = append(out, f)
		}
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
	// from the ledger, every field it sends (their old values unknown).
	Changes []Change `json:"changes,omitempty"`
	// Fields is the update's body, in the terms of the API's update: the
	// changes and a phone's type beside its number.
	Fields map[string]string `json:"fields,omitempty"`
	// Note says why, for the report: the residents taken as gone, the
	// differences kept (never_overwrite) or that the update cannot send.
	Note string `json:"note,omitempty"`
}

// Result is the row's outcome for a decision that writes nothing.
func (d Decision) Result(row, line int) RowResult {
	r := RowResult{Row: row, Line: line, Outcome: d.Outcome, Action: ActionNone, RecordID: d.RecordID, Error: d.Note}
	if d.Outcome == Succeeded {
		r.Action = ActionCreate // the import's own create, found (CreatedSince)
	}
	switch d.Outcome {
	case Conflict:
		r.ErrorCode = CodeConflict
	case NotFound:
		r.ErrorCode = CodeNotFound
	case Superseded:
		r.ErrorCode = CodeSuperseded
	case Duplicate:
		r.ErrorCode = CodeDuplicate
	}
	return r
}

// Decide chooses what the sync does with a row's resident r, given the
// residents its match key found in the snapshot and what the ledger
// remembers of the key (nil: nothing). A key that finds several residents
// is a conflict: the importer never guesses. A resident not seen in the
// PMS for longer than StaleAfter is no match: the row is decided as if it
// were not listed, and the note says so.
func (s Sync) Decide(r RowResident, matches []ResidentRecord, ledger *LedgerEntry) Decision {
	if !s.Mode.Matches() {
		return Decision{Action: ActionCreate}
	}
	var fresh []ResidentRecord
	var gone []string
	for _, m := range matches {
		if s.Stale(m) {
			gone = append(gone, fmt.Sprintf("%s, last seen %s", m.ID, m.LastSeen.UTC().Format("2006-01-02")))
			if ledger != nil && ledger.RecordID == m.ID {
				ledger = nil // the importer wrote it, and it has gone since
			}
			continue
		}
		fresh = append(fresh, m)
	}
	d := s.decide(r, fresh, ledger)
	if d.Action == ActionUpdate && ledger != nil && ledger.RecordID == d.RecordID && s.Older(*ledger) {
		d = Decision{Action: ActionNone, Outcome: Superseded, RecordID: d.RecordID,
			Note: fmt.Sprintf("this roster was written %s; a roster written %s wrote the resident since: an older roster never overwrites a newer one",
				s.RosterAsOf.UTC().Format(time.RFC3339), ledger.AsOf.UTC().Format(time.RFC3339))}
	}
	if d.Outcome == Unchanged && !s.CreatedSince.IsZero() {
		for _, m := range fresh {
			// (The API's times may be whole seconds.)
			if m.ID == d.RecordID && !m.CreatedAt.Before(s.CreatedSince.Truncate(time.Second)) {
				d.Outcome, d.Note = Succeeded, "created by this import before Redis lost its data (the resident appeared after it first started, with the row's values): found, not sent again"
			}
		}
	}
	if len(gone) > 0 {
		note := fmt.Sprintf("the key also matched %s: not seen in the PMS for over %s, taken as gone", strings.Join(gone, "; "), days(s.StaleAfter))
		if len(fresh) == 0 && d.RecordID == "" {
			note = fmt.Sprintf("the key matched only %s: not seen in the PMS for over %s, taken as gone", strings.Join(gone, "; "), days(s.StaleAfter))
		}
		d.Note = strings.TrimPrefix(d.Note+"; "+note, "; ")
	}
	return d
}

// Older reports whether the import's roster was written before the roster
// that wrote the ledger's entry (a second's difference is none: file
// times may be whole seconds).
func (s Sync) Older(e LedgerEntry) bool {
	return !s.RosterAsOf.IsZero() && !e.AsOf.IsZero() && s.RosterAsOf.Add(time.Second).Before(e.AsOf)
}

// days says a duration in days when it is whole days.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
	return d.String()
}

func (s Sync) decide(r RowResident, matches []ResidentRecord, ledger *LedgerEntry) Decision {
	switch {
	case len(matches) > 1:
		ids := make([]string, len(matches))
		for i, m := range matches {
			ids[i] = m.ID
		}
		return Decision{Action: ActionNone, Outcome: Conflict, Candidates: ids,
			Note: fmt.Sprintf("the key matches %d residents (%s); make the row's key unique or fix the PMS", len(ids), strings.Join(ids, ", "))}
	case len(matches) == 0 && ledger == nil:
		if s.Mode == ModeUpdate {
			return Decision{Action: ActionNone, Outcome: NotFound, Note: "no resident matches the row's key"}
		}
		return Decision{Action: ActionCreate}
	case len(matches) == 0:
		// Written by the importer, not listed (yet): the API's cache lags.
		if s.Mode == ModeCreateMissing {
			return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: ledger.RecordID, Note: "exists (the importer created it); create-missing leaves it alone"}
		}
		if ledger.Sent == SentHash(r.Resident) && ledger.Blind == s.BlindHash(r) {
			return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: ledger.RecordID, Note: "the importer wrote these values already"}
		}
		// Its copy cannot be read: only the fields the policy updates go,
		// never one that fills a blank or must not be overwritten.
		return s.update(ledger.RecordID, r, nil, ledger)
	}
	rec := matches[0]
	if s.Mode == ModeCreateMissing {
		return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: rec.ID, Note: "exists; create-missing leaves it alone"}
	}
	d := s.update(rec.ID, r, &rec, ledger)
	if d.Action == ActionUpdate && ledger != nil && ledger.RecordID == rec.ID && ledger.Sent == SentHash(r.Resident) &&
		ledger.Blind == s.BlindHash(r) && ledger.At.After(rec.UpdatedAt) {
		// The importer sent these values after the API's copy was read
		// from the PMS: the copy lags, the resident has them.
		return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: rec.ID, Note: "the importer wrote these values already; the API's copy lags"}
	}
	return d
}

// update decides the update of resident id from the row r: field by field,
// by its policy, against the resident's copy rec (nil: not readable, known
// from the ledger only). It is unchanged when nothing is to be sent.
func (s Sync) update(id string, r RowResident, rec *ResidentRecord, ledger *LedgerEntry) Decision {
	var changes []Change
	var notes []string
	oldOf := func(f string) string {
		if rec == nil {
			return ""
		}
		return rec.Get(f)
	}
	blindChanged := ledger == nil || ledger.Blind != s.BlindHash(r)
	for _, f := range r.Own {
		if matchOnly(f) || !updatable[f] {
			continue
		}
		now := r.Get(f)
		switch s.Policy(f) {
		case WriteUpdate:
			switch {
			case !readableFields[f]:
				if !blindChanged {
					continue
				}
			case rec != nil && comparable(f, oldOf(f)) == comparable(f, now):
				continue
			}
		case WriteFillIfBlank:
			if rec == nil || strings.TrimSpace(oldOf(f)) != "" {
				continue
			}
		case WriteNeverOverwrite:
			if rec != nil && strings.TrimSpace(oldOf(f)) != "" && comparable(f, oldOf(f)) != comparable(f, now) {
				notes = append(notes, fmt.Sprintf("%s kept (never_overwrite): the resident has %q, the row %q", f, oldOf(f), now))
			}
			continue
		default:
			continue
		}
		changes = append(changes, Change{Field: f, Old: oldOf(f), New: now})
	}
	if rec != nil {
		for _, f := range r.Blanks {
			if old := rec.Get(f); old != "" {
				changes = append(changes, Change{Field: f, Old: old})
			}
		}
	}
	changes, fields, why := s.putBody(r, rec, changes)
	notes = append(notes, why...)
	if len(changes) == 0 {
		return Decision{Action: ActionNone, Outcome: Unchanged, RecordID: id, Note: strings.Join(notes, "; ")}
	}
	return Decision{Action: ActionUpdate, RecordID: id, Changes: changes, Fields: fields, Note: strings.Join(notes, "; ")}
}

// putBody puts changes in the terms of the API's update: each value as its
// schema takes it (state codes, US or CA, phone_1 types without OTHER),
// and a phone_1's type beside its number (required there): the row's
// type, else the resident's. A change the update cannot take is left out,
// and why is said.
func (s Sync) putBody(r RowResident, rec *ResidentRecord, changes []Change) (kept []Change, fields map[string]string, why []string) {
	fields = map[string]string{}
	for _, c := range changes {
		v, err := putValue(c.Field, c.New)
		if err != nil && c.New != "" {
			why = append(why, c.Field+" not sent: "+err.Error())
			continue
		}
		if c.Field == FieldPhone1 && c.New != "" {
			t := r.Phone1Type
			if t == "" && rec != nil {
				t = rec.Phone1Type
			}
			if t == "" {
				t = "OTHER" // what a create assumes: claims nothing
			}
			pt, err := putValue(FieldPhone1Type, t)
			if err != nil {
				why = append(why, "phone_1 not sent: "+err.Error())
				continue
			}
			fields[FieldPhone1Type] = pt
		}
		fields[c.Field] = v
		kept = append(kept, c)
	}
	return kept, fields, why
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
	// Superseded: rows whose resident a newer roster wrote since.
	Superseded int `json:"superseded,omitempty"`
	Invalid    int `json:"invalid"`
	Duplicate  int `json:"duplicate"`
}

// Add counts one row's decision.
func (c *PlanCounts) Add(d Decision) {
	switch {
	case d.Action == ActionCreate, d.Outcome == Succeeded:
		c.Create++
	case d.Action == ActionUpdate:
		c.Update++
	case d.Outcome == Unchanged:
		c.Unchanged++
	case d.Outcome == Conflict:
		c.Conflict++
	case d.Outcome == NotFound:
		c.NotFound++
	case d.Outcome == Superseded:
		c.Superseded++
	case d.Outcome == Duplicate:
		c.Duplicate++
	}
}

// NotFine counts the rows the plan leaves in an outcome that is not Fine,
// before anything is written: conflicts, rows not found or superseded,
// invalid and duplicate rows. A run of the plan cannot end with every row
// fine.
func (c PlanCounts) NotFine() int {
	return c.Conflict + c.NotFound + c.Superseded + c.Invalid + c.Duplicate
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

// Update is what a sync's plan keeps for a row before anything is sent:
// the update it sends (the resident it writes to, the fields it changes,
// old → new, and the body, in the terms of the API's update), or, with
// Create, a create whose decision has a note for the report (a match taken
// as gone).
type Update struct {
	RecordID string            `json:"id,omitempty"`
	Changes  []Change          `json:"changes,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
	Note     string            `json:"note,omitempty"`
	Create   bool              `json:"create,omitempty"`
}

// Planned is what the plan keeps of a decision: its update, a create's
// note, or nothing (false) for a plain create or a row that writes
// nothing.
func (d Decision) Planned() (Update, bool) {
	switch {
	case d.Action == ActionUpdate:
		return Update{RecordID: d.RecordID, Changes: d.Changes, Fields: d.Fields, Note: d.Note}, true
	case d.Action == ActionCreate && d.Note != "":
		return Update{Create: true, Note: d.Note}, true
	}
	return Update{}, false
}

// DefaultLedgerRetention is how long the ledger remembers a write: a
// little over a year, so a yearly roster still finds last year's residents.
const DefaultLedgerRetention = 400 * 24 * time.Hour

// ActionOf is the action of a row as the report shows it: the plan's
// update (planned), else what its outcome tells (a row written without an
// update planned was a create; one never sent, none).
func ActionOf(r RowResult, planned bool) Action {
	switch {
	case r.Action != "":
		return r.Action
	case r.Outcome == "":
		return ""
	case planned:
		return ActionUpdate
	case r.Outcome == Invalid || r.Outcome == Duplicate || r.Outcome == Cancelled || r.Outcome == Unchanged ||
		r.Outcome == Conflict || r.Outcome == NotFound || r.Outcome == Superseded:
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
func (p SnapshotPage) Whole() bool {
	return p.Scope.XID == "" && p.Scope.Email == "" && p.Scope.XPropertyID == ""
}

// FilterOf is the listing that finds a row's residents with one request,
// and false for a row no filter finds safely: only an x_id with its
// x_property_id (the API needs both, and compares ids exactly). An email
// is matched on a listing instead: whether email_1= ignores case is
// undocumented, and a filter that compared exactly would miss a resident
// written in another case and create it twice. Name and date of birth are
// no filters at all.
func FilterOf(scope ListScope, r Resident, key string) (ListScope, bool) {
	if KindOf(key) != MatchXID || r.XPropertyID == "" {
		return scope, false
	}
	scope.XID, scope.XPropertyID = strings.TrimSpace(r.XID), strings.TrimSpace(r.XPropertyID)
	return scope, true
}
