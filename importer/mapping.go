package importer

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Mapping is a saved column mapping (--mapping FILE, a schedule's mapping:):
// how a file's columns become a resident's fields, layered over the built-in
// aliases. It travels in the import's options, so that every worker maps
// the stored rows alike, and its content is part of the import's id: a
// changed mapping is a new import. Its yaml tags are the mapping file's
// keys.
type Mapping struct {
	// Name is the mapping file's name, for the summary.
	Name string `json:"name,omitempty" yaml:"-"`
	// Columns maps a column's label (any case and punctuation) to a field,
	// or to FieldFullName: a full name split into first and last.
	Columns map[string]string `json:"columns,omitempty" yaml:"columns"`
	// Ignore lists columns mapped to nothing (kept in the report).
	Ignore []string `json:"ignore,omitempty" yaml:"ignore"`
	// Constants fill the fields a row leaves empty.
	Constants map[string]string `json:"constants,omitempty" yaml:"constants"`
	// Values translate a field's values, compared in any case:
	// phone_1_type: {Cell: MOBILE}.
	Values map[string]map[string]string `json:"values,omitempty" yaml:"values"`
	// Dates give the format of a date field's values: MM/DD/YYYY,
	// DD.MM.YYYY, YYYY-MM-DD (YY for a two-digit year).
	Dates map[string]string `json:"dates,omitempty" yaml:"dates"`
	// MatchKey names the column a sync matches residents on: the PMS's
	// own id (x_id).
	MatchKey string `json:"match_key,omitempty" yaml:"match_key"`
	// Strict refuses a file whose columns are not the mapping's: any
	// column gained or lost, before anything is sent.
	Strict bool `json:"strict,omitempty" yaml:"strict"`
	// Write sets a field's write policy in a sync (update, on_create,
	// fill_if_blank, never_overwrite): what is written to a resident that
	// exists. A field it does not name has DefaultWritePolicy.
	Write map[string]WritePolicy `json:"write,omitempty" yaml:"write"`
}

// FieldFullName is the pseudo-field of a column holding a whole name,
// split into first_name and last_name ("Ada Lovelace", "Lovelace, Ada").
const FieldFullName = "full_name"

// Normalize checks a mapping and puts it in one spelling, so that equal
// mappings hash alike. It returns the first problem, naming its place.
func (m Mapping) Normalize() (Mapping, error) {
	out := Mapping{Name: m.Name, Strict: m.Strict, MatchKey: strings.TrimSpace(m.MatchKey)}
	field := func(where, f string, pseudo bool) (string, error) {
		f = strings.ToLower(strings.TrimSpace(f))
		if IsField(f) || (pseudo && f == FieldFullName) {
			return f, nil
		}
		return "", fmt.Errorf("%s: %q is not a resident field (use one of %s)", where, f, strings.Join(Fields(), ", "))
	}
	if len(m.Columns) > 0 {
		out.Columns = map[string]string{}
	}
	for col, f := range m.Columns {
		got, err := field("columns."+col, f, true)
		if err != nil {
			return Mapping{}, err
		}
		if normalize(col) == "" {
			return Mapping{}, fmt.Errorf("columns: %q is not a column label", col)
		}
		for other := range out.Columns {
			if normalize(other) == normalize(col) {
				return Mapping{}, fmt.Errorf("columns: %q and %q name the same column", other, col)
			}
		}
		out.Columns[col] = got
	}
	if out.MatchKey != "" {
		if f, ok := out.Columns[out.MatchKey]; ok && f != FieldXID {
			return Mapping{}, fmt.Errorf("match_key: column %q is mapped to %s, not x_id", out.MatchKey, f)
		}
		if out.Columns == nil {
			out.Columns = map[string]string{}
		}
		out.Columns[out.MatchKey] = FieldXID
	}
	for _, col := range m.Ignore {
		if _, mapped := out.Columns[col]; mapped {
			return Mapping{}, fmt.Errorf("ignore: column %q is also mapped in columns", col)
		}
		out.Ignore = append(out.Ignore, col)
	}
	slices.Sort(out.Ignore)
	for f, v := range m.Constants {
		got, err := field("constants", f, false)
		if err != nil {
			return Mapping{}, err
		}
		if out.Constants == nil {
			out.Constants = map[string]string{}
		}
		out.Constants[got] = v
	}
	for f, table := range m.Values {
		got, err := field("values", f, false)
		if err != nil {
			return Mapping{}, err
		}
		if out.Values == nil {
			out.Values = map[string]map[string]string{}
		}
		out.Values[got] = map[string]string{}
		for from, to := range table {
			out.Values[got][strings.ToLower(strings.TrimSpace(from))] = to
		}
	}
	for f, policy := range m.Write {
		got, err := field("write", f, false)
		if err != nil {
			return Mapping{}, err
		}
		p, err := ParseWritePolicy(got, string(policy))
		if err != nil {
			return Mapping{}, fmt.Errorf("write.%v", err)
		}
		if out.Write == nil {
			out.Write = map[string]WritePolicy{}
		}
		out.Write[got] = p
	}
	for f, format := range m.Dates {
		got, err := field("dates", f, false)
		if err != nil {
			return Mapping{}, err
		}
		if got != FieldDateOfBirth {
			return Mapping{}, fmt.Errorf("dates: %s is not a date field (date_of_birth is)", got)
		}
		if _, err := dateLayout(format); err != nil {
			return Mapping{}, fmt.Errorf("dates.%s: %v", got, err)
		}
		if out.Dates == nil {
			out.Dates = map[string]string{}
		}
		out.Dates[got] = strings.ToUpper(strings.TrimSpace(format))
	}
	return out, nil
}

// Hash is a short hash of the mapping's content (not its name), for the
// summary: an audit shows which mapping wrote what.
func (m *Mapping) Hash() string {
	if m == nil {
		return ""
	}
	c := *m
	c.Name = ""
	b, _ := json.Marshal(c) // maps marshal in key order: a stable hash
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// MappingUsed is what a summary says of the mapping an import used.
type MappingUsed struct {
	Name string `json:"name"`
	Hash string `json:"sha256_12"`
}

// Used is what the summary says of the mapping; nil without one.
func (m *Mapping) Used() *MappingUsed {
	if m == nil {
		return nil
	}
	return &MappingUsed{Name: m.Name, Hash: m.Hash()}
}

// FieldFor is the field a column stands for under the mapping: nothing for
// an ignored column, the mapping's field, else the built-in aliases. A nil
// mapping is the aliases alone.
func (m *Mapping) FieldFor(label string) (string, bool) { return m.labels().fieldFor(label) }

// FieldsRead maps each field the columns fill, under the mapping, to the
// column that fills it (the first, as the readers read them); unknown
// columns fill nothing.
func (m *Mapping) FieldsRead(columns, unknown []string) map[string]string {
	out := map[string]string{}
	for _, col := range columns {
		if slices.Contains(unknown, col) {
			continue
		}
		if field, ok := m.FieldFor(col); ok {
			if _, seen := out[field]; !seen {
				out[field] = col
			}
		}
	}
	return out
}

// DroppedColumns names the fields an earlier import of a roster read that
// its next file no longer fills — a column renamed or gone — as "Phone
// (phone_1)", in the earlier file's column order. A sync leaves those
// fields as they are without a word, so a schedule refuses such a file
// unless told otherwise.
func DroppedColumns(before Import, columns, unknown []string, m *Mapping) []string {
	then := before.Options.Mapping.FieldsRead(before.Columns, before.UnknownColumns)
	now := m.FieldsRead(columns, unknown)
	var out []string
	for _, col := range before.Columns {
		for field, read := range then {
			if read == col && !fills(now, field) {
				out = append(out, col+" ("+field+")")
			}
		}
	}
	return out
}

// fills reports whether the fields read fill field: a full name fills the
// first and last names, and both of those a full name.
func fills(read map[string]string, field string) bool {
	has := func(f string) bool { _, ok := read[f]; return ok }
	switch field {
	case FieldFullName:
		return has(FieldFullName) || (has("first_name") && has("last_name"))
	case "first_name", "last_name":
		return has(field) || has(FieldFullName)
	}
	return has(field)
}

// RowOf rebuilds a row from its original columns (as stored for the report)
// under the mapping, as the readers map them: the first column of a field
// wins. A nil mapping is the aliases alone.
func (m *Mapping) RowOf(number, line int, cols []Column) Row {
	return m.labels().rowOf(number, line, cols)
}

// labelTable is a mapping by normalized column label, made once for the
// many columns and rows read with it.
type labelTable struct {
	fields  map[string]string
	ignored map[string]bool
}

func (m *Mapping) labels() labelTable {
	var t labelTable
	if m == nil {
		return t
	}
	t.fields, t.ignored = make(map[string]string, len(m.Columns)), make(map[string]bool, len(m.Ignore))
	for col, f := range m.Columns {
		t.fields[normalize(col)] = f
	}
	for _, col := range m.Ignore {
		t.ignored[normalize(col)] = true
	}
	return t
}

func (t labelTable) fieldFor(label string) (string, bool) {
	if t.fields == nil {
		return FieldFor(label)
	}
	key := normalize(label)
	if t.ignored[key] {
		return "", false
	}
	if f, ok := t.fields[key]; ok {
		return f, true
	}
	return aliases[key], aliases[key] != ""
}

// rowOf maps a row's columns to fields: the first column of a field wins.
func (t labelTable) rowOf(number, line int, cols []Column) Row {
	row := Row{Number: number, Line: line, Values: make(map[string]string, len(cols)), Columns: cols}
	for _, c := range cols {
		if f, ok := t.fieldFor(c.Name); ok {
			if _, taken := row.Values[f]; !taken {
				row.Values[f] = c.Value
			}
		}
	}
	return row
}

// CheckColumns refuses, for a strict mapping, a file whose columns are not
// the mapping's: it names the columns gained and lost.
func (m *Mapping) CheckColumns(names []string) error {
	if m == nil || !m.Strict {
		return nil
	}
	expected := map[string]string{}
	for col := range m.Columns {
		expected[normalize(col)] = col
	}
	for _, col := range m.Ignore {
		expected[normalize(col)] = col
	}
	var gained, lost []string
	seen := map[string]bool{}
	for _, n := range names {
		key := normalize(n)
		seen[key] = true
		if _, ok := expected[key]; !ok {
			gained = append(gained, n)
		}
	}
	for key, col := range expected {
		if !seen[key] {
			lost = append(lost, col)
		}
	}
	slices.Sort(lost)
	if len(gained) == 0 && len(lost) == 0 {
		return nil
	}
	var parts []string
	if len(gained) > 0 {
		parts = append(parts, "it has columns the mapping does not name ("+strings.Join(gained, ", ")+")")
	}
	if len(lost) > 0 {
		parts = append(parts, "it lacks columns the mapping names ("+strings.Join(lost, ", ")+")")
	}
	return fmt.Errorf("the file's columns differ from the strict mapping %s: %s", cmp.Or(m.Name, m.Hash()), strings.Join(parts, "; "))
}

// prepare applies the mapping's transforms to a row's values before they
// are validated: a full name split, values translated, dates read in their
// format, and, with constants, the constants for the fields left empty. It
// returns a copy; the row's own values are left as they are.
func (m *Mapping) prepare(values map[string]string, constants bool) map[string]string {
	if m == nil {
		return values
	}
	out := maps.Clone(values)
	if full := strings.TrimSpace(out[FieldFullName]); full != "" && out[FieldFirstName] == "" && out[FieldLastName] == "" {
		out[FieldFirstName], out[FieldLastName] = SplitName(full)
	}
	delete(out, FieldFullName)
	for f, table := range m.Values {
		if to, ok := table[strings.ToLower(strings.TrimSpace(out[f]))]; ok {
			out[f] = to
		}
	}
	for f, format := range m.Dates {
		v := strings.TrimSpace(out[f])
		if v == "" {
			continue
		}
		layout, _ := dateLayout(format)
		if t, err := time.Parse(layout, v); err == nil {
			out[f] = t.Format("2006-01-02")
		}
		// A value not in the format is left for validation to refuse.
	}
	for f, v := range m.Constants {
		if constants && strings.TrimSpace(out[f]) == "" {
			out[f] = v
		}
	}
	return out
}

// SplitName splits a full name into first and last: "Lovelace, Ada" (last
// name first, after a comma) or "Ada King Lovelace" (the last word is the
// last name).
func SplitName(full string) (first, last string) {
	if before, after, ok := strings.Cut(full, ","); ok {
		return strings.TrimSpace(after), strings.TrimSpace(before)
	}
	words := strings.Fields(full)
	if len(words) == 1 {
		return "", words[0]
	}
	return strings.Join(words[:len(words)-1], " "), words[len(words)-1]
}

// dateTokens are the parts of a date format, longest first, and their Go
// layout.
var dateTokens = []struct{ token, layout string }{{"YYYY", "2006"}, {"YY", "06"}, {"MM", "01"}, {"DD", "02"}}

// dateLayout turns a date format such as MM/DD/YYYY into Go's layout.
func dateLayout(format string) (string, error) {
	f := strings.ToUpper(strings.TrimSpace(format))
	var b strings.Builder
	parts := 0
next:
	for i := 0; i < len(f); {
		for _, t := range dateTokens {
			if strings.HasPrefix(f[i:], t.token) {
				b.WriteString(t.layout)
				i += len(t.token)
				parts++
				continue next
			}
		}
		if !strings.ContainsRune("/.- ", rune(f[i])) {
			return "", fmt.Errorf("%q is not a date format: use YYYY, YY, MM and DD with / . - or spaces, e.g. MM/DD/YYYY", format)
		}
		b.WriteByte(f[i])
		i++
	}
	if parts != 3 {
		return "", fmt.Errorf("%q is not a date format: it needs a year, a month and a day, e.g. MM/DD/YYYY", format)
	}
	return b.String(), nil
}
