package importer

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxTextLength caps every text field; the API documents no general limit,
// and a longer value is almost always a column mix-up.
const maxTextLength = 255

var (
	phoneTypes  = []string{"FAX", "HOME", "MOBILE", "OTHER", "WORK"}
	rentPeriods = []string{"MONTHLY", "WEEKLY", "DAILY"}
)

// ParseRentPeriod accepts a rent period in any case and returns it as the API
// spells it.
func ParseRentPeriod(s string) (string, error) {
	return oneOf(s, rentPeriods)
}

// ParseRentDueDay accepts a day of the month, 1 to 31.
func ParseRentDueDay(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	if n < 1 || n > 31 {
		return 0, fmt.Errorf("%d is not a day of the month (1-31)", n)
	}
	return n, nil
}

func oneOf(s string, allowed []string) (string, error) {
	up := strings.ToUpper(strings.TrimSpace(s))
	for _, a := range allowed {
		if up == a {
			return a, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
}

// Validator checks rows against an import's options and vendor rules and
// spots records that repeat an earlier one. It keeps a fingerprint of every
// valid record it has seen, so use one Validator per pass over a file.
type Validator struct {
	opts   Options
	labels labelTable // the mapping's, made once
	now    func() time.Time
	seen   map[[16]byte]int
	buf    []byte // fingerprint's scratch
}

// NewValidator returns a Validator for an import with the given options.
// The options must have passed Options.Normalize.
func NewValidator(opts Options) *Validator {
	return &Validator{opts: opts, labels: opts.Mapping.labels(), now: time.Now, seen: make(map[[16]byte]int)}
}

// Check turns a row into the resident to send. It returns the problems of an
// invalid row (all of them, not only the first) and, for a record identical
// to an earlier valid one, the number of that earlier row.
func (v *Validator) Check(row Row) (res Resident, problems []Problem, duplicateOf int) {
	if row.Err != nil {
		return Resident{}, []Problem{{Reason: row.Err.Error()}}, 0
	}
	res, problems = v.build(row.Values)
	if len(problems) > 0 {
		return Resident{}, problems, 0
	}
	key := v.fingerprint(&res)
	if first, ok := v.seen[key]; ok {
		return res, nil, first
	}
	v.seen[key] = row.Number
	return res, nil, 0
}

// Row rebuilds a row from its stored columns, mapping them as the file was
// read: under the import's mapping, else the built-in aliases.
func (v *Validator) Row(number, line int, cols []Column) Row {
	return v.labels.rowOf(number, line, cols)
}

// Resident turns a row that passed Check before into the resident to send,
// without looking for duplicates: the feed uses it on stored rows.
func (v *Validator) Resident(row Row) (Resident, []Problem) {
	if row.Err != nil {
		return Resident{}, []Problem{{Reason: row.Err.Error()}}
	}
	return v.build(row.Values)
}

// Own lists the fields a row itself gives a value, read as the mapping
// reads it (a full name split, values translated), without the mapping's
// constants or the run's defaults: a sync writes those on a create only.
func (v *Validator) Own(row Row) []string {
	values := v.opts.Mapping.prepare(row.Values, false)
	var out []string
	for _, f := range Fields() {
		if strings.TrimSpace(values[f]) != "" && v.opts.Vendor.Takes(f) {
			out = append(out, f)
		}
	}
	return out
}

// RowResident is a row's resident as a sync decides it: the resident, the
// fields the row gives itself, and, with --blank-clears, those it clears.
// It returns the row's problems instead when it is invalid.
func (v *Validator) RowResident(row Row, sync Sync) (RowResident, []Problem) {
	r, problems := v.Resident(row)
	if len(problems) > 0 {
		return RowResident{}, problems
	}
	out := RowResident{Resident: r, Own: v.Own(row)}
	if v.opts.BlankClears {
		out.Blanks = sync.Blanks(row, r)
	}
	return out, nil
}

// fingerprint hashes every field of a valid resident, comparing emails and
// names in any case, as the API's look-up does: two records that differ
// only there are the same resident. Valid values hold no control
// character, so a NUL separates them unambiguously.
func (v *Validator) fingerprint(r *Resident) [16]byte {
	b := v.buf[:0]
	for _, f := range [...]string{r.FirstName, r.MiddleName, r.LastName, r.Email1, r.Email2} {
		b = appendFolded(b, f)
		b = append(b, 0)
	}
	for _, f := range [...]string{r.IntegrationID, r.PropertyID, r.LeaseID, r.DateOfBirth, r.Phone1, r.Phone1Type, r.Phone2, r.Phone2Type,
		r.Address1, r.Address2, r.City, r.State, r.Zip, r.Country,
		r.Address1Alternate, r.Address2Alternate, r.CityAlternate, r.StateAlternate, r.ZipAlternate, r.CountryAlternate,
		r.Notes, r.RentPeriod, r.XID, r.XPropertyID} {
		b = append(b, f...)
		b = append(b, 0)
	}
	b = strconv.AppendInt(b, int64(r.RentDueDay), 10)
	v.buf = b
	sum := sha256.Sum256(b)
	var key [16]byte
	copy(key[:], sum[:16])
	return key
}

// appendFolded appends s in lower case, without allocating for ASCII text.
func appendFolded(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf {
			return append(b, strings.ToLower(s[i:])...)
		} else if 'A' <= c && c <= 'Z' {
			b = append(b, c+'a'-'A')
		} else {
			b = append(b, c)
		}
	}
	return b
}

// build applies the defaults, normalises every value and checks every rule.
func (v *Validator) build(values map[string]string) (Resident, []Problem) {
	values = v.opts.Mapping.prepare(values, true)
	var res Resident
	var problems []Problem
	bad := func(field, format string, args ...any) {
		problems = append(problems, Problem{Field: field, Reason: fmt.Sprintf(format, args...)})
	}

	vendor := v.opts.Vendor
	for _, f := range textFields {
		if !vendor.Takes(f.name) {
			continue // never sent: the file's report keeps it
		}
		val := strings.TrimSpace(values[f.name])
		if !utf8.ValidString(val) {
			bad(f.name, "is not valid UTF-8 text: save the file as UTF-8")
			continue
		}
		if c, ok := controlChar(val, f.name == FieldNotes); ok {
			bad(f.name, "holds the control character %U", c)
			continue
		}
		if n := utf8.RuneCountInString(val); n > maxTextLength {
			bad(f.name, "is %d characters long; at most %d are allowed", n, maxTextLength)
			continue
		}
		*f.ptr(&res) = val
	}
	if res.IntegrationID == "" {
		res.IntegrationID = v.opts.IntegrationID
	}
	if res.PropertyID == "" && vendor.Takes(FieldPropertyID) {
		res.PropertyID = v.opts.PropertyID
	}
	if res.RentPeriod == "" && vendor.Takes(FieldRentPeriod) {
		res.RentPeriod = v.opts.RentPeriod
	}

	for _, field := range []string{FieldEmail1, FieldEmail2} {
		p := emailField(&res, field)
		if *p == "" {
			continue
		}
		if err := checkEmail(*p); err != nil {
			bad(field, "%v", err)
		}
	}
	if res.DateOfBirth != "" {
		ts, err := parseDate(res.DateOfBirth, v.now())
		if err != nil {
			bad(FieldDateOfBirth, "%v", err)
		} else {
			res.DateOfBirth = ts
		}
	}
	for _, pair := range [][2]*string{{&res.Phone1, &res.Phone1Type}, {&res.Phone2, &res.Phone2Type}} {
		number, kind := pair[0], pair[1]
		numberField, typeField := FieldPhone1, FieldPhone1Type
		if number == &res.Phone2 {
			numberField, typeField = FieldPhone2, FieldPhone2Type
		}
		if *number != "" {
			if err := checkPhone(*number); err != nil {
				bad(numberField, "%v", err)
			}
		}
		if *kind != "" {
			t, err := oneOf(*kind, phoneTypes)
			if err != nil {
				bad(typeField, "%v", err)
			}
			*kind = t
		}
	}
	if res.RentPeriod != "" {
		p, err := ParseRentPeriod(res.RentPeriod)
		if err != nil {
			bad(FieldRentPeriod, "%v", err)
		}
		res.RentPeriod = p
	}
	if raw := strings.TrimSpace(values[FieldRentDueDay]); raw != "" && vendor.Takes(FieldRentDueDay) {
		day, err := ParseRentDueDay(raw)
		if err != nil {
			bad(FieldRentDueDay, "%v", err)
		}
		res.RentDueDay = day
	} else if vendor.Takes(FieldRentDueDay) {
		res.RentDueDay = v.opts.RentDueDay
	}

	rules := v.opts.Vendor.Rules()
	for _, field := range rules.Required {
		if isEmpty(&res, field) && !hasProblem(problems, field) {
			bad(field, "is required for %s", v.opts.Vendor)
		}
	}
	for _, f := range textFields {
		limit, ok := rules.MaxLength[f.name]
		if !ok {
			continue
		}
		if n := utf8.RuneCountInString(*f.ptr(&res)); n > limit {
			bad(f.name, "is %d characters long; %s allows at most %d", n, v.opts.Vendor, limit)
		}
	}
	for _, field := range slices.Sorted(maps.Keys(rules.Allowed)) {
		if val := res.Get(field); val != "" && !hasProblem(problems, field) && !slices.Contains(rules.Allowed[field], val) {
			bad(field, "is %q; %s takes only %s", val, v.opts.Vendor, strings.Join(rules.Allowed[field], ", "))
		}
	}
	return res, problems
}

// controlChar finds a control character in s: none belongs in a resident's
// data (and some would rewrite a terminal showing it). Notes may hold tabs
// and line breaks.
func controlChar(s string, notes bool) (rune, bool) {
	for _, c := range s {
		if notes && (c == '\t' || c == '\n' || c == '\r') {
			continue
		}
		if c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return c, true
		}
	}
	return 0, false
}

func emailField(r *Resident, field string) *string {
	if field == FieldEmail2 {
		return &r.Email2
	}
	return &r.Email1
}

func isEmpty(r *Resident, field string) bool {
	if field == FieldRentDueDay {
		return r.RentDueDay == 0
	}
	for _, f := range textFields {
		if f.name == field {
			return *f.ptr(r) == ""
		}
	}
	return true
}

func hasProblem(problems []Problem, field string) bool {
	for _, p := range problems {
		if p.Field == field {
			return true
		}
	}
	return false
}

func checkEmail(s string) error {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return fmt.Errorf("%q is not an email address", s)
	}
	at := strings.LastIndexByte(s, '@')
	if domain := s[at+1:]; !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, ".") {
		return fmt.Errorf("%q is not an email address: the domain %q has no dot", s, domain)
	}
	return nil
}

// checkPhone accepts what people write for a phone number: digits, with
// spaces, dots, dashes, parentheses, a leading + and an extension.
func checkPhone(s string) error {
	digits := 0
	main, _, _ := strings.Cut(strings.ToLower(s), "x")
	for i, c := range main {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '+' && i == 0:
		case strings.ContainsRune(" .-()/", c):
		default:
			return fmt.Errorf("%q is not a phone number: %q is not allowed", s, string(c))
		}
	}
	if digits < 7 || digits > 15 {
		unit := "digits"
		if digits == 1 {
			unit = "digit"
		}
		return fmt.Errorf("%q is not a phone number: it has %d %s, 7 to 15 expected", s, digits, unit)
	}
	return nil
}

// parseDate accepts YYYY-MM-DD or an RFC 3339 timestamp and returns the full
// UTC timestamp the API expects.
func parseDate(s string, now time.Time) (string, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		t, err = time.Parse(time.RFC3339, s)
	}
	if err != nil {
		return "", fmt.Errorf("%q is not a date: use YYYY-MM-DD or an RFC 3339 timestamp", s)
	}
	if t.After(now) {
		return "", fmt.Errorf("%q is in the future", s)
	}
	if t.Year() < 1900 {
		return "", fmt.Errorf("%q is before 1900", s)
	}
	return t.UTC().Format(time.RFC3339), nil
}
