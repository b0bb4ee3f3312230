// Package schedule reads the YAML files an operator writes: the file of
// nightly imports (entries of a cron expression with a time zone, an inbox
// path or glob, and the import's options; each becomes an Asynq periodic
// task that starts the imports of the files waiting in its inbox), and the
// column mapping files they and 'importer run --mapping' use.
package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/propexo-importer/importer/importer"
)

// File is the schedules file.
type File struct {
	Schedules []Entry `yaml:"schedules"`
}

// Entry is one scheduled import.
type Entry struct {
	Name      string `yaml:"name"`
	Cron      string `yaml:"cron"`
	Timezone  string `yaml:"timezone"`
	Inbox     string `yaml:"inbox"`
	Format    string `yaml:"format"`
	Delimiter string `yaml:"delimiter"`
	// Sheet is the sheet of an Excel workbook to read; empty is the
	// first.
	Sheet         string `yaml:"sheet"`
	Vendor        string `yaml:"vendor"`
	IntegrationID string `yaml:"integration_id"`
	PropertyID    string `yaml:"property_id"`
	RentPeriod    string `yaml:"rent_period"`
	RentDueDay    int    `yaml:"rent_due_day"`
	Deadline      string `yaml:"deadline"`
	Verify        bool   `yaml:"verify"`
	// Mode, MatchOn, BlankClears, MaxCreates and MaxUpdates are run's
	// --mode, --match-on, --blank-clears, --max-creates and --max-updates.
	Mode        string `yaml:"mode"`
	MatchOn     string `yaml:"match_on"`
	BlankClears bool   `yaml:"blank_clears"`
	// StaleAfter is run's --stale-after (30d, 720h, never).
	StaleAfter string `yaml:"stale_after"`
	MaxCreates string `yaml:"max_creates"`
	// Mapping is a column mapping file, relative to the schedules file.
	Mapping string `yaml:"mapping"`
	// Priority weights the imports' share of the API budget: high, normal
	// or low.
	Priority   string `yaml:"priority"`
	MaxUpdates string `yaml:"max_updates"`
	// ReportDir is a subfolder of the workers' --report-dir for this
	// schedule's reports.
	ReportDir string `yaml:"report_dir"`
	Retention string `yaml:"retention"`
	// Settle is how long a file must be left unchanged before it is
	// claimed (default 30s; "0s" claims at once). ReadyMarker, when set,
	// is the suffix of the file that tells a file is complete (".done":
	// residents.csv waits for residents.csv.done). ClaimTimeout is how
	// long a worker may go silent on a file before another takes it over
	// (default 5m).
	Settle       string `yaml:"settle"`
	ReadyMarker  string `yaml:"ready_marker"`
	ClaimTimeout string `yaml:"claim_timeout"`
	// MaxFieldBytes, MaxRecordBytes and MaxColumns bound what a record
	// may hold, as run's --max-field-bytes, --max-record-bytes and
	// --max-columns do (the same defaults).
	MaxFieldBytes  int `yaml:"max_field_bytes"`
	MaxRecordBytes int `yaml:"max_record_bytes"`
	MaxColumns     int `yaml:"max_columns"`
	// Notify are the targets told about the entry's imports and firings.
	Notify []NotifyEntry `yaml:"notify"`
	// ExpectFile: a firing that finds no file in the inbox is an event
	// (no_file) for the targets.
	ExpectFile bool `yaml:"expect_file"`
	// AllowDroppedColumns imports a file that no longer has a column the
	// schedule's last import read (a field it would leave as it is);
	// without it such a file goes to failed/, naming the columns.
	AllowDroppedColumns bool `yaml:"allow_dropped_columns"`
	// RetryTransient tries the rows that failed for a reason a retry can
	// mend (the PMS down or in maintenance) again by themselves, this
	// long after the import ends (2h; at most 3 rounds).
	RetryTransient string `yaml:"retry_transient"`
}

// NotifyEntry is a notification target of a schedule: one of a Slack
// incoming-webhook URL, a webhook URL or an smtp:// address, with the
// events it wants (default all) and whether it opts in to failed rows.
// ${VAR} in an address is read from the environment, so that a secret URL
// stays out of the file.
type NotifyEntry struct {
	Slack       string   `yaml:"slack"`
	Webhook     string   `yaml:"webhook"`
	Email       string   `yaml:"email"`
	Events      []string `yaml:"events"`
	IncludeRows bool     `yaml:"include_rows"`
}

// NotifySpec is a schedule's notification target as read: its address
// (a Slack one always as Slack: slack+ before a URL not on
// hooks.slack.com) and its choices.
type NotifySpec struct {
	Address     string
	Events      []importer.EventKind
	IncludeRows bool
}

// Periodic is an entry ready for the scheduler: when it fires (its cron
// spec, with CRON_TZ) and what it imports.
type Periodic struct {
	Spec string
	// Name names the entry; Inbox is the path or glob of its files.
	Name, Inbox string
	// Options are the imports' options (Format empty: by extension).
	Options importer.Options
	// Limits bound what a record of a file may hold, as run's flags do.
	Limits importer.Limits
	// ReportSubdir is the subfolder of the workers' report folder for its
	// reports; Retention, how long their rows stay in Redis.
	ReportSubdir string
	Retention    time.Duration
	// Settle, ReadyMarker and ClaimTimeout are the entry's own (see
	// Entry).
	Settle       time.Duration
	ReadyMarker  string
	ClaimTimeout time.Duration
	// Cron is the entry's cron expression as written (Spec adds its time
	// zone).
	Cron string
	// Notify are its notification targets; Where names the entry in
	// errors about them ("schedules.yaml: schedule 2 (acme)").
	Notify              []NotifySpec
	Where               string
	ExpectFile          bool
	AllowDroppedColumns bool
	RetryTransient      time.Duration
}

// Next is the entry's first firing after t.
func (p Periodic) Next(t time.Time) time.Time {
	s, err := cron.ParseStandard(p.Spec)
	if err != nil {
		return time.Time{} // Load checked it
	}
	return s.Next(t)
}

// DefaultSettle is how long a file must be left unchanged before it is
// claimed; DefaultClaimTimeout, how long a claim's worker may go silent
// before another takes the file over.
const (
	DefaultSettle       = 30 * time.Second
	DefaultClaimTimeout = 5 * time.Minute
)

// Load reads and checks a schedules file. Relative paths in it are relative
// to the file's folder; getenv reads the ${VAR} of its notify addresses
// (nil: they are left as written, for a reader that sends nothing). Errors
// name the file and the entry.
func Load(path string, getenv func(string) string) ([]Periodic, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if len(f.Schedules) == 0 {
		return nil, fmt.Errorf("%s: no schedules: the file needs a list under \"schedules:\"", path)
	}
	base := filepath.Dir(path)
	seen := map[string]bool{}
	var out []Periodic
	for i, e := range f.Schedules {
		where := fmt.Sprintf("%s: schedule %d", path, i+1)
		if e.Name != "" {
			where += " (" + e.Name + ")"
		}
		p, err := e.periodic(base, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		p.Where = where
		if seen[e.Name] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		seen[e.Name] = true
		out = append(out, p)
	}
	return out, nil
}

func (e Entry) periodic(base string, getenv func(string) string) (Periodic, error) {
	if e.Name == "" {
		return Periodic{}, errors.New("name is missing")
	}
	if e.Cron == "" {
		return Periodic{}, errors.New("cron is missing (e.g. \"0 2 * * *\")")
	}
	spec := e.Cron
	if e.Timezone != "" {
		if _, err := time.LoadLocation(e.Timezone); err != nil {
			return Periodic{}, fmt.Errorf("timezone %q: %v", e.Timezone, err)
		}
		spec = "CRON_TZ=" + e.Timezone + " " + spec
	}
	if _, err := cron.ParseStandard(spec); err != nil {
		return Periodic{}, fmt.Errorf("cron %q: %v", e.Cron, err)
	}
	if e.Inbox == "" {
		return Periodic{}, errors.New("inbox is missing (a path or glob, e.g. /data/inbox/*.csv)")
	}
	inbox, err := inboxOf(base, e.Inbox)
	if err != nil {
		return Periodic{}, err
	}
	opts := importer.Options{Format: e.Format, Delimiter: e.Delimiter, Sheet: e.Sheet, Vendor: importer.Vendor(e.Vendor), IntegrationID: e.IntegrationID,
		PropertyID: e.PropertyID, RentPeriod: e.RentPeriod, RentDueDay: e.RentDueDay, Verify: e.Verify,
		Mode: importer.Mode(e.Mode), MatchOn: e.MatchOn, BlankClears: e.BlankClears, Priority: importer.Priority(e.Priority)}
	if opts.MaxCreates, opts.MaxUpdates, err = importer.ParseGuards(e.MaxCreates, e.MaxUpdates); err != nil {
		return Periodic{}, err
	}
	if opts.StaleAfter, err = importer.ParseStaleAfter(e.StaleAfter); err != nil {
		return Periodic{}, fmt.Errorf("stale_after %v", err)
	}
	if e.Deadline != "" {
		d, err := time.ParseDuration(e.Deadline)
		if err != nil {
			return Periodic{}, fmt.Errorf("deadline %q: %v", e.Deadline, err)
		}
		opts.Deadline = d
	}
	if e.Mapping != "" {
		path := e.Mapping
		if !filepath.IsAbs(path) {
			path = filepath.Join(base, path)
		}
		m, err := LoadMapping(path)
		if err != nil {
			return Periodic{}, fmt.Errorf("mapping: %v", err)
		}
		opts.Mapping = &m
	}
	opts, err = opts.Normalize()
	if err != nil {
		return Periodic{}, err
	}
	var retryTransient time.Duration
	if e.RetryTransient != "" {
		d, err := time.ParseDuration(e.RetryTransient)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			return Periodic{}, fmt.Errorf("retry_transient %q: use a duration from a minute to a day, e.g. 2h", e.RetryTransient)
		}
		retryTransient = d
	}
	retention := importer.DefaultRetention
	if e.Retention != "" {
		d, err := time.ParseDuration(e.Retention)
		if err != nil || d < time.Minute {
			return Periodic{}, fmt.Errorf("retention %q: use a duration of a minute or more, e.g. 168h", e.Retention)
		}
		retention = d
	}
	if e.ReportDir != "" && !filepath.IsLocal(e.ReportDir) {
		return Periodic{}, fmt.Errorf("report_dir %q: give a folder name inside the workers' --report-dir (the workers write reports only under their own folder)", e.ReportDir)
	}
	settle, err := durationOr(e.Settle, DefaultSettle, "settle")
	if err != nil {
		return Periodic{}, err
	}
	claimTimeout, err := durationOr(e.ClaimTimeout, DefaultClaimTimeout, "claim_timeout")
	if err != nil {
		return Periodic{}, err
	}
	if claimTimeout < 10*time.Second {
		return Periodic{}, fmt.Errorf("claim_timeout %q: use 10s or more", e.ClaimTimeout)
	}
	if m := e.ReadyMarker; m != "" && (!strings.HasPrefix(m, ".") || strings.ContainsAny(m, `/\*?[`)) {
		return Periodic{}, fmt.Errorf("ready_marker %q: use a suffix such as .done or .ok", m)
	}
	sub := ""
	if e.ReportDir != "" {
		sub = filepath.Clean(e.ReportDir)
	}
	limits := importer.Limits{MaxFieldBytes: e.MaxFieldBytes, MaxRecordBytes: e.MaxRecordBytes, MaxColumns: e.MaxColumns}
	if limits.MaxFieldBytes < 0 || limits.MaxRecordBytes < 0 || limits.MaxColumns < 0 {
		return Periodic{}, errors.New("max_field_bytes, max_record_bytes and max_columns: use positive numbers")
	}
	notify, err := notifySpecs(e.Notify, getenv)
	if err != nil {
		return Periodic{}, err
	}
	return Periodic{Spec: spec, Name: e.Name, Inbox: inbox, Options: opts, Limits: limits.WithDefaults(), ReportSubdir: sub, Retention: retention,
		Settle: settle, ReadyMarker: e.ReadyMarker, ClaimTimeout: claimTimeout, Cron: e.Cron, Notify: notify, ExpectFile: e.ExpectFile,
		AllowDroppedColumns: e.AllowDroppedColumns, RetryTransient: retryTransient}, nil
}

// inboxOf checks an entry's inbox, a folder's path and a pattern of the
// names of its files, or the address of a remote folder and the pattern
// (sftp://user@host/drop/*.csv, s3://bucket/inbox/*.xlsx), and returns it
// (a path made absolute, an address as written: its query configures the
// bucket). Errors show an address without user info or query.
func inboxOf(base, inbox string) (string, error) {
	u, err := url.Parse(inbox)
	if err != nil || u.Scheme == "" || u.Host == "" || !strings.Contains(inbox, "://") {
		inbox = abs(base, inbox)
		if _, err := filepath.Match(filepath.Base(inbox), "x"); err != nil {
			return "", fmt.Errorf("inbox %s: %v", inbox, err)
		}
		if strings.ContainsAny(filepath.Dir(inbox), "*?[") {
			return "", fmt.Errorf("inbox %s: a pattern goes in the files' name only (one folder an entry: its processing/, done/ and failed/ are beside the files)", inbox)
		}
		return inbox, nil
	}
	shown := u.Scheme + "://" + u.Host + u.Path
	switch u.Scheme {
	case "sftp", "s3", "gs", "azblob":
	default:
		return "", fmt.Errorf("inbox %s: an inbox is a folder, on this machine, an SFTP server (sftp://) or in a bucket (s3://, gs://, azblob://); files at %s:// addresses cannot be claimed or moved (import one with 'importer run' from cron)", shown, u.Scheme)
	}
	if _, ok := u.User.Password(); ok {
		return "", fmt.Errorf("inbox %s: a password in the address is not used; SFTP signs in with the SSH agent or a key file", shown)
	}
	pattern := path.Base(u.Path)
	if u.Path == "" || pattern == "/" {
		return "", fmt.Errorf("inbox %s: end the address with the files' name or pattern (%s://%s/inbox/*.csv)", shown, u.Scheme, u.Host)
	}
	if _, err := path.Match(pattern, "x"); err != nil {
		return "", fmt.Errorf("inbox %s: %v", shown, err)
	}
	if strings.ContainsAny(path.Dir(u.Path), "*?[") {
		return "", fmt.Errorf("inbox %s: a pattern goes in the files' name only (one folder an entry: its processing/, done/ and failed/ are beside the files)", shown)
	}
	return inbox, nil
}

// notifySpecs reads an entry's notify block.
func notifySpecs(entries []NotifyEntry, getenv func(string) string) ([]NotifySpec, error) {
	var out []NotifySpec
	for i, n := range entries {
		where := fmt.Sprintf("notify %d", i+1)
		var given []string
		for _, a := range []string{n.Slack, n.Webhook, n.Email} {
			if a != "" {
				given = append(given, a)
			}
		}
		if len(given) != 1 {
			return nil, fmt.Errorf("%s: give one of slack, webhook or email (one target an item)", where)
		}
		address, err := expandAddress(given[0], getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		switch {
		case n.Slack != "" && !strings.HasPrefix(strings.ToLower(address), "https://hooks.slack.com/") && !strings.HasPrefix(strings.ToLower(address), "slack+"):
			address = "slack+" + address
		case n.Email != "" && !strings.HasPrefix(strings.ToLower(address), "smtp"):
			return nil, fmt.Errorf("%s: email: use smtp://user@host:587?to=you@example.com (or smtps://)", where)
		}
		events, err := importer.ParseEvents(n.Events)
		if err != nil {
			return nil, fmt.Errorf("%s: events: %v", where, err)
		}
		out = append(out, NotifySpec{Address: address, Events: events, IncludeRows: n.IncludeRows})
	}
	return out, nil
}

// expandAddress reads the ${VAR} of an address from getenv; with no getenv
// the address is left as written.
func expandAddress(address string, getenv func(string) string) (string, error) {
	if getenv == nil {
		return strings.TrimSpace(address), nil
	}
	var missing []string
	address = strings.TrimSpace(os.Expand(address, func(name string) string {
		v := getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}))
	if len(missing) > 0 {
		return "", fmt.Errorf("%s is not set in the environment", strings.Join(missing, ", "))
	}
	return address, nil
}

// durationOr parses a duration of the file, def when it is not given.
func durationOr(s string, def time.Duration, field string) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: use a duration such as 30s or 5m", field, s)
	}
	return d, nil
}

func abs(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	a, err := filepath.Abs(filepath.Join(base, p))
	if err != nil {
		return p
	}
	return a
}
