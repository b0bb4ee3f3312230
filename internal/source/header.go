package source

import (
	"strconv"

	"github.com/propexo-importer/importer/importer"
)

// columns keeps the column names of a file in order of first appearance and
// what each maps to. In a CSV header (unique names) a field claimed by two
// columns goes to the first; the second is kept as an unknown column. JSON
// objects may each spell a field their own way; within one object the first
// key wins (see Reader.build).
type columns struct {
	names   []string
	index   map[string]int
	fields  []string // by column: the API field, or "" for an unknown column
	claimed map[string]bool
	// suffix is the next " (n)" to try for a repeated name, so that
	// renaming many repeats stays linear.
	suffix map[string]int
	// mapping, when set, maps columns before the built-in aliases.
	mapping *importer.Mapping
}

func newColumns(m *importer.Mapping) *columns {
	return &columns{index: map[string]int{}, claimed: map[string]bool{}, suffix: map[string]int{}, mapping: m}
}

// has reports whether a column of that name was seen.
func (c *columns) has(name string) bool {
	_, ok := c.index[name]
	return ok
}

// add registers a column name and returns its position. An empty name is
// called "column N"; a repeated one gets " (2)", " (3)"...
func (c *columns) add(name string, unique bool) int {
	if name == "" {
		name = "column " + strconv.Itoa(len(c.names)+1)
	}
	if i, ok := c.index[name]; ok && !unique {
		return i
	}
	if _, ok := c.index[name]; ok {
		base := name
		for n := max(c.suffix[base], 2); ; n++ {
			name = base + " (" + strconv.Itoa(n) + ")"
			if _, taken := c.index[name]; !taken {
				c.suffix[base] = n + 1
				break
			}
		}
	}
	field, ok := c.mapping.FieldFor(name)
	if !ok || (unique && c.claimed[field]) {
		field = ""
	} else {
		c.claimed[field] = true
	}
	c.index[name] = len(c.names)
	c.names = append(c.names, name)
	c.fields = append(c.fields, field)
	return len(c.names) - 1
}

func (c *columns) unknown() []string {
	var out []string
	for i, f := range c.fields {
		if f == "" {
			out = append(out, c.names[i])
		}
	}
	return out
}
