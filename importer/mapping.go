package importer

import (
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
// changed mapping is a new import.
type Mapping struct {
	// Name is the mapping file's name, for the summary.
	Name string `json:"name,omitempty"`
	// Columns maps a column's label (any case and punctuation) to a field,
	// or to FieldFullName: a full name split into first and last.
	Columns map[string]string `json:"columns,omitempty"`
	// Ignore lists columns mapped to nothing (kept in the report).
	Ignore []string `json:"ignore,omitempty"`
	// Constants fill the fields a row leaves empty.
	Constants map[string]string `json:"constants,omitempty"`
	// Values translate a field's values, compared in any case:
	// phone_1_type: {Cell: MOBILE}.
	Values map[string]map[string]string `json:"values,omitempty"`
	// Dates give the format of a date field's values: MM/DD/YYYY,
	// DD.MM.YYYY, YYYY-MM-DD (YY for a two-digit year).
	Dates map[string]string `json:"dates,omitempty"`
	// MatchKey names the column a sync matches residents on: the PMS's
	// own id (x_id).
	MatchKey string `json:"match_key,omitempty"`
	// Strict refuses a file whose columns are not the mapping's: any
	// column gained or lost, before anything is sent.
	Strict bool `json:"strict,omitempty"`
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
func (m *Mapping) FieldFor(label string) (string, bool) {
	if m != nil {
		key := normalize(label)
		for _, col := range m.Ignore {
			if normalize(col) == key {
				return "", false
			}
		}
		for _, col := range slices.Sorted(maps.Keys(m.Columns)) {
			if normalize(col) == key {
				return m.Columns[col], true
			}
		}
	}
	return FieldFor(label)
}

// RowOf rebuilds a row from its original columns under the mapping (see
// the package function RowOf).
func (m *Mapping) RowOf(number, line int, cols []Column) Row {
	row := Row{Number: number, Line: line, Values: make(map[string]string, len(cols)), Columns: cols}
	for _, c := range cols {
		if f, ok := m.FieldFor(c.Name); ok {
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
	return fmt.Errorf("the file's columns differ from the strict mapping %s: %s", cmpOr(m.Name, m.Hash()), strings.Join(parts, "; "))
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// prepare applies the mapping's transforms to a row's values before they
// are validated: a full name split, values translated, dates read in their
// format, constants for the fields left empty. It returns a copy; the
// row's own values are left as they are.
func (m *Mapping) prepare(values map[string]string) map[string]string {
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
		if strings.TrimSpace(out[f]) == "" {
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

// dateLayout turns a date format such as MM/DD/YYYY into Go's layout.
func dateLayout(format string) (string, error) {
	f := strings.ToUpper(strings.TrimSpace(format))
	var b strings.Builder
	parts := 0
	for i := 0; i < len(f); {
		switch {
		case strings.HasPrefix(f[i:], "YYYY"):
			b.WriteString("2006")
			i += 4
			parts++
		case strings.HasPrefix(f[i:], "YY"):
			b.WriteString("06")
			i += 2
			parts++
		case strings.HasPrefix(f[i:], "MM"):
			b.WriteString("01")
			i += 2
			parts++
		case strings.HasPrefix(f[i:], "DD"):
			b.WriteString("02")
			i += 2
			parts++
		case strings.ContainsRune("/.- ", rune(f[i])):
			b.WriteByte(f[i])
			i++
		default:
			return "", fmt.Errorf("%q is not a date format: use YYYY, YY, MM and DD with / . - or spaces, e.g. MM/DD/YYYY", format)
		}
	}
	if parts != 3 {
		return "", fmt.Errorf("%q is not a date format: it needs a year, a month and a day, e.g. MM/DD/YYYY", format)
	}
	return b.String(), nil
}
