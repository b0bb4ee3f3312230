package importer

// Limits bound what one record of a file may hold, so a broken or hostile
// file cannot exhaust memory or make one row unreadable for people. A
// record past a limit is an invalid row; a record far longer than
// MaxRecordBytes is not read into memory at all and refuses the file, as
// does a file with more than MaxColumns different columns (a header that
// wide, or JSON records that bring as many keys in all).
type Limits struct {
	// MaxFieldBytes caps one value. Default 64 KiB.
	MaxFieldBytes int `json:"max_field_bytes,omitempty"`
	// MaxRecordBytes caps one record, all values together. Default 1 MiB.
	MaxRecordBytes int `json:"max_record_bytes,omitempty"`
	// MaxColumns caps the columns of a file, all records together.
	// Default 1000.
	MaxColumns int `json:"max_columns,omitempty"`
}

// DefaultLimits are the limits of a file read without others.
var DefaultLimits = Limits{MaxFieldBytes: 64 << 10, MaxRecordBytes: 1 << 20, MaxColumns: 1000}

// WithDefaults returns the limits with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxFieldBytes <= 0 {
		l.MaxFieldBytes = DefaultLimits.MaxFieldBytes
	}
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = DefaultLimits.MaxRecordBytes
	}
	if l.MaxColumns <= 0 {
		l.MaxColumns = DefaultLimits.MaxColumns
	}
	return l
}
