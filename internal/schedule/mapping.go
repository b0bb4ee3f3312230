package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/propexo-importer/importer/importer"
)

// LoadMapping reads and checks a column mapping file (--mapping, a
// schedule's mapping:). Errors name the file.
func LoadMapping(path string) (importer.Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return importer.Mapping{}, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f importer.Mapping
	if err := dec.Decode(&f); err != nil {
		return importer.Mapping{}, fmt.Errorf("%s: %v", path, err)
	}
	f.Name = filepath.Base(path)
	m, err := f.Normalize()
	if err != nil {
		return importer.Mapping{}, fmt.Errorf("%s: %v", path, err)
	}
	return m, nil
}

// SuggestMapping writes a starting mapping for a file's columns: each
// column the built-in aliases map, with its field, and each they leave
// unmapped, commented out for the user to fill in or ignore.
func SuggestMapping(file string, header []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# A column mapping for %s, as the built-in aliases read it.\n", filepath.Base(file))
	b.WriteString("# Fill in the unmapped columns (a field, or full_name to split a whole name),\n")
	b.WriteString("# or list them under ignore:; then use it with --mapping FILE or a schedule's mapping:.\n")
	b.WriteString("strict: false        # true: refuse a file whose columns differ from these\n")
	b.WriteString("columns:\n")
	var unmapped []string
	seen := map[string]bool{}
	for _, col := range header {
		f, ok := importer.FieldFor(col)
		if !ok {
			unmapped = append(unmapped, col)
			continue
		}
		note := ""
		if seen[f] {
			note = "   # the first column of " + f + " wins; map this one elsewhere or ignore it"
		}
		seen[f] = true
		fmt.Fprintf(&b, "  %s: %s%s\n", yamlKey(col), f, note)
	}
	for _, col := range unmapped {
		fmt.Fprintf(&b, "  # %s:               (unmapped: the aliases know no field for it)\n", yamlKey(col))
	}
	b.WriteString("ignore: []\n")
	b.WriteString("# constants: {property_id: prop_100}\n")
	b.WriteString("# values: {phone_1_type: {Cell: MOBILE}}\n")
	b.WriteString("# dates: {date_of_birth: MM/DD/YYYY}\n")
	b.WriteString("# match_key: Tenant Code   # the column a sync matches on (the PMS's id, x_id)\n")
	return []byte(b.String())
}

// yamlKey quotes a column label when YAML would not read it back as is.
func yamlKey(s string) string {
	out, err := yaml.Marshal(map[string]int{s: 0})
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	key, _, _ := strings.Cut(string(out), ": ")
	return key
}
