package schedule_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/schedule"
)

func TestSampleLoads(t *testing.T) {
	entries, err := schedule.Load("../../samples/schedules.yaml", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries", len(entries))
	}
	j := entries[0]
	dir, _ := filepath.Abs("../../samples")
	if j.Spec != "CRON_TZ=America/New_York 0 2 * * *" || j.Inbox != filepath.Join(dir, "inbox/rentmanager/*.csv") ||
		j.Options.Vendor != importer.VendorRentManager || j.Options.RentPeriod != "MONTHLY" || j.Options.Deadline != 24*time.Hour ||
		j.ReportSubdir != "nightly" {
		t.Errorf("entry 1 = %+v", j)
	}
	if !entries[1].Options.Verify || entries[1].Options.Vendor != importer.VendorBuildium || entries[1].Options.Deadline != importer.DefaultDeadline || entries[1].Limits != importer.DefaultLimits {
		t.Errorf("entry 2 = %+v", entries[1])
	}
}

// The complete nightly sample: sync, a strict mapping, notifications with
// a Slack URL from the environment, and expect_file.
func TestNightlySampleLoads(t *testing.T) {
	t.Setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/SECRET")
	entries, err := schedule.Load("../../samples/nightly.yaml", os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	e := entries[0]
	if e.Options.Mode != importer.ModeUpsert || e.Options.Mapping == nil || !e.Options.Mapping.Strict || !e.ExpectFile || e.Cron != "30 2 * * *" {
		t.Errorf("entry = %+v", e)
	}
	if len(e.Notify) != 3 || e.Notify[0].Address != "https://hooks.slack.com/services/T0/B0/SECRET" || len(e.Notify[0].Events) != 6 ||
		e.Notify[1].Events != nil || !e.Notify[2].IncludeRows {
		t.Errorf("notify = %+v", e.Notify)
	}
	next := e.Next(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 29, 7, 30, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next firing = %v, want %v (02:30 in New York)", next.UTC(), want)
	}

	// Without the variable, the file says which is missing.
	os.Unsetenv("SLACK_WEBHOOK_URL")
	if _, err := schedule.Load("../../samples/nightly.yaml", os.Getenv); err == nil || !strings.Contains(err.Error(), "schedule 1 (nightly-roster): notify 1: SLACK_WEBHOOK_URL is not set") {
		t.Errorf("Load without SLACK_WEBHOOK_URL: %v", err)
	}
	// A reader that sends nothing ('schedule list') needs no variable.
	if entries, err := schedule.Load("../../samples/nightly.yaml", nil); err != nil || !strings.Contains(entries[0].Notify[0].Address, "${SLACK_WEBHOOK_URL}") {
		t.Errorf("Load with no environment: %v", err)
	}
}

func TestErrorsNameTheEntry(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"schedules: []", "no schedules"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x/*.csv\n    colour: red\n", "field colour not found"},
		{"schedules:\n  - name: a\n    cron: 'every night'\n    inbox: x/*.csv\n", `schedule 1 (a): cron "every night"`},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    timezone: Mars/Olympus\n    inbox: x\n", `schedule 1 (a): timezone "Mars/Olympus"`},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n", "schedule 1 (a): inbox is missing"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    vendor: yardi\n", "Yardi cannot create residents"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n  - name: a\n    cron: '0 3 * * *'\n    inbox: y\n", "schedule 2 (a): the name is used twice"},
		{"schedules:\n  - cron: '0 2 * * *'\n    inbox: x\n", "schedule 1: name is missing"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    report_dir: /etc/cron.d\n", "report_dir \"/etc/cron.d\": give a folder name inside the workers' --report-dir"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    report_dir: ../elsewhere\n", "report_dir \"../elsewhere\""},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    settle: soon\n", "settle \"soon\""},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    ready_marker: done\n", "ready_marker \"done\""},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    notify:\n      - webhook: https://x.example\n        slack: https://hooks.slack.com/services/a\n", "notify 1: give one of slack, webhook or email"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    notify:\n      - webhook: https://x.example\n        events: [finished]\n", `notify 1: events: unknown event "finished"`},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    notify:\n      - email: pm@example.com\n", "notify 1: email: use smtp://"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: x\n    priority: urgent\n", `schedule 1 (a): priority: "urgent": use high, normal or low`},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: https://pms.example/export.csv?token=SECRET\n", "schedule 1 (a): inbox https://pms.example/export.csv: an inbox is a folder"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: sftp://pms:hunter2@sftp.example/drop/*.csv\n", "inbox sftp://sftp.example/drop/*.csv: a password in the address is not used"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: s3://exports\n", "inbox s3://exports: end the address with the files' name or pattern"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: s3://exports/in/[.csv\n", "inbox s3://exports/in/[.csv: syntax error in pattern"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: /data/*/roster.csv\n", "inbox /data/*/roster.csv: a pattern goes in the files' name only"},
		{"schedules:\n  - name: a\n    cron: '0 2 * * *'\n    inbox: sftp://pms@host/drop-*/roster.csv\n", "inbox sftp://host/drop-*/roster.csv: a pattern goes in the files' name only"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "s.yaml")
		os.WriteFile(path, []byte(tt.yaml), 0o600)
		_, err := schedule.Load(path, os.Getenv)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: error %v, want %q (and no secret)", tt.yaml, err, tt.want)
		}
	}
}

// A remote inbox is kept as written (not made a path), its query
// included: it configures the bucket.
func TestScheduleRemoteInboxes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "schedules.yaml")
	os.WriteFile(path, []byte(`schedules:
  - name: sftp
    cron: '0 2 * * *'
    inbox: sftp://pms@sftp.example.com/drop/*.csv
  - name: bucket
    cron: '0 2 * * *'
    inbox: s3://exports/acme/*.xlsx?region=eu-west-1
`), 0o600)
	entries, err := schedule.Load(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if entries[0].Inbox != "sftp://pms@sftp.example.com/drop/*.csv" || entries[1].Inbox != "s3://exports/acme/*.xlsx?region=eu-west-1" {
		t.Errorf("inboxes %q, %q", entries[0].Inbox, entries[1].Inbox)
	}
}

// A schedule of Excel workbooks names the sheet its imports read.
func TestScheduleSheet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "schedules.yaml")
	os.WriteFile(path, []byte("schedules:\n  - name: maple\n    cron: '0 2 * * *'\n    inbox: in/*.xlsx\n    sheet: Roster\n"), 0o600)
	entries, err := schedule.Load(path, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if got := entries[0].Options.Sheet; got != "Roster" {
		t.Errorf("sheet = %q, want Roster", got)
	}
}

// A schedule's mapping: is read with the schedule, relative to its file;
// a bad mapping is told with the schedule and the mapping file named.
func TestScheduleMapping(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte("columns:\n  Mobile: phone_1\n  Full Name: full_name\nstrict: true\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("columns:\n  Mobile: cellphone\n"), 0o600)
	write := func(mapping string) string {
		path := filepath.Join(dir, "schedules.yaml")
		os.WriteFile(path, []byte("schedules:\n  - name: acme\n    cron: '0 2 * * *'\n    inbox: in/*.csv\n    mapping: "+mapping+"\n"), 0o600)
		return path
	}
	entries, err := schedule.Load(write("acme.yaml"), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	m := entries[0].Options.Mapping
	if m == nil || m.Name != "acme.yaml" || !m.Strict || m.Columns["Mobile"] != "phone_1" {
		t.Errorf("mapping = %+v", m)
	}
	if _, err := schedule.Load(write("bad.yaml"), os.Getenv); err == nil || !strings.Contains(err.Error(), `schedule 1 (acme): mapping: `) || !strings.Contains(err.Error(), `bad.yaml: columns.Mobile: "cellphone" is not a resident field`) {
		t.Errorf("bad mapping: %v", err)
	}
}
