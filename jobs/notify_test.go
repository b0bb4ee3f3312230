package jobs_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/notify"
	"github.com/propexo-importer/importer/internal/notifytest"
	"github.com/propexo-importer/importer/internal/propexo"
	"github.com/propexo-importer/importer/jobs"
)

const notifySecret = "whsec-notify-test"

// receivers are a test's real notification targets: a Slack-like HTTP
// receiver, a signed-webhook receiver and an SMTP server.
type receivers struct {
	slack, hook *notifytest.Receiver
	mail        *notifytest.SMTPServer
	sender      notify.Sender
	targets     []notify.Target
}

func newReceivers(t *testing.T) *receivers {
	r := &receivers{slack: notifytest.NewReceiver(t, "", ""), hook: notifytest.NewReceiver(t, notifySecret, notify.SignatureHeader),
		mail: notifytest.NewSMTPServer(t, "alerts", "smtp-pass")}
	r.sender = notify.Sender{Secret: notifySecret, SMTPPassword: "smtp-pass", TLS: &tls.Config{RootCAs: r.mail.Roots}}
	for _, a := range []string{"slack+" + r.slack.URL + "/services/T0/B0/SECRET", r.hook.URL + "/importer", "smtp://alerts@" + r.mail.Addr + "?to=ops@example.com"} {
		target, err := notify.Parse(a)
		if err != nil {
			t.Fatal(err)
		}
		r.targets = append(r.targets, target)
	}
	return r
}

// save keeps the targets' addresses in the env's Redis and returns how
// imports name them.
func (r *receivers) save(t *testing.T, e *env) []importer.NotifyTarget {
	t.Helper()
	var refs []importer.NotifyTarget
	for _, target := range r.targets {
		if err := e.store.SaveNotifyTarget(context.Background(), target.ID(), target.Address()); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, target.Ref())
	}
	return refs
}

// startServers runs n Asynq servers with the handlers, as n workers would.
func startServers(t *testing.T, e *env, h *jobs.Imports, n int, queues map[string]int, tune ...func(*asynq.Config)) {
	t.Helper()
	for i := 0; i < n; i++ {
		mux := asynq.NewServeMux()
		h.Register(mux)
		cfg := jobs.ServerConfig(8, nil)
		cfg.LogLevel = asynq.ErrorLevel
		cfg.ErrorHandler = h
		if queues != nil {
			cfg.Queues = queues
		}
		for _, f := range tune {
			f(&cfg)
		}
		srv := asynq.NewServerFromRedisClient(e.rdb, cfg)
		if err := srv.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
	}
}

// waitFor polls until ok or the timeout, and fails the test with what.
func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// An import run by three workers, its finalize redelivered and finished
// again by a command, is announced once to each target: the Slack receiver
// fails twice and accepts the third try, the webhook's signature checks,
// the email arrives over STARTTLS.
func TestNotificationsArriveOncePerEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "uniform:50ms-300ms", nil)
	rx := newReceivers(t)
	rx.slack.FailNext(2)
	refs := rx.save(t, e)
	h := jobs.NewImports(e.api, e.store, e.queue, e.reports, nil, jobs.Config{PollInitial: 200 * time.Millisecond, PollMax: time.Second,
		Sender: rx.sender, DashboardURL: "https://importer.example.com"})
	startServers(t, e, h, 3, nil)

	const rows = 30
	imp, _, err := e.store.CreateImport(ctx, importer.Import{ID: "imp-notify", File: "test.csv", CreatedAt: time.Now().UTC(), Total: -1, Notify: refs,
		Options: mustNormalize(t, importer.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the import did not finish", func() bool {
		got, _ := e.store.Import(ctx, imp.ID)
		return got.Finished()
	})
	// A late, redelivered finalize and a command finishing it again.
	if err := jobs.EnqueueFinalize(ctx, e.queue, imp.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.commands().Finish(ctx, imp.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "not every target got its notification", func() bool {
		return len(rx.slack.Deliveries()) == 1 && len(rx.hook.Deliveries()) == 1 && len(rx.mail.Mails()) == 1
	})
	e.waitQuiet(t, 30*time.Second, nil) // a second delivery, were there one, has come by then
	if n, tries := len(rx.slack.Deliveries()), rx.slack.Attempts(); n != 1 || tries != 3 {
		t.Errorf("Slack: %d deliveries in %d attempts, want 1 in 3 (two failures, then accepted)", n, tries)
	}
	if n := len(rx.hook.Deliveries()); n != 1 || !rx.hook.Deliveries()[0].SignatureOK {
		t.Errorf("webhook: %d deliveries, want 1 signed", n)
	}
	if n := len(rx.mail.Mails()); n != 1 || !rx.mail.Mails()[0].TLS {
		t.Errorf("email: %d mails, want 1 over STARTTLS", n)
	}
	var ev importer.Event
	if err := json.Unmarshal(rx.hook.Deliveries()[0].Body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != importer.EventSucceeded || ev.Total != rows || ev.Counts[importer.Succeeded] != rows || ev.State != "finished" ||
		ev.Dashboard != "https://importer.example.com/imports/imp-notify" {
		t.Errorf("event = %+v, want %d succeeded, finished, with the dashboard's link", ev, rows)
	}
	var slackMsg struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(rx.slack.Deliveries()[0].Body, &slackMsg); err != nil || !strings.HasPrefix(slackMsg.Text, "Import test.csv finished: all 30 rows succeeded") {
		t.Errorf("Slack message = %s (%v)", rx.slack.Deliveries()[0].Body, err)
	}
}

// failRows resolves every row of an import failed, with an error that names
// the resident, and finishes it through a command.
func failRows(t *testing.T, e *env, imp importer.Import, rows int) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.commands().Split(ctx, imp, &fakeRows{n: rows}); err != nil {
		t.Fatal(err)
	}
	for row := 1; row <= rows; row++ {
		code := "pms_rejected"
		if row%3 == 0 {
			code = "invalid_phone"
		}
		if _, err := e.store.Move(ctx, imp.ID, importer.Move{Row: row, To: importer.PhaseResolved, Result: importer.RowResult{Row: row, Line: row + 1, Outcome: importer.Failed, ErrorCode: code,
			Error: "the PMS refused Resident Number" + string(rune('0'+row)), At: time.Now().UTC()}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, done, err := e.commands().Finish(ctx, imp.ID); err != nil || !done {
		t.Fatalf("Finish = %v, %v", done, err)
	}
}

// A notification holds counts and error codes, no personal data, unless its
// target opted in to the first failed rows.
func TestNotificationsHoldNoPersonalDataUnlessAsked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:0s", nil)
	plain := notifytest.NewReceiver(t, notifySecret, notify.SignatureHeader)
	rows := notifytest.NewReceiver(t, notifySecret, notify.SignatureHeader)
	var refs []importer.NotifyTarget
	for i, rx := range []*notifytest.Receiver{plain, rows} {
		target, _ := notify.Parse(rx.URL + "/hook")
		target.IncludeRows = i == 1
		target.Events = []importer.EventKind{importer.EventFailures}
		e.store.SaveNotifyTarget(ctx, target.ID(), target.Address())
		refs = append(refs, target.Ref())
	}
	imp, _, err := e.store.CreateImport(ctx, importer.Import{ID: "imp-failing", File: "roster.csv", CreatedAt: time.Now().UTC(), Total: -1, Notify: refs,
		Options: mustNormalize(t, importer.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	failRows(t, e, imp, 6)
	h := jobs.NewImports(nil, e.store, e.queue, e.reports, nil, jobs.Config{Sender: notify.Sender{Secret: notifySecret}})
	startServers(t, e, h, 1, map[string]int{jobs.QueueNotify: 1})
	waitFor(t, 20*time.Second, "the notifications did not arrive", func() bool {
		return len(plain.Deliveries()) == 1 && len(rows.Deliveries()) == 1
	})
	var ev, withRows importer.Event
	json.Unmarshal(plain.Deliveries()[0].Body, &ev)
	json.Unmarshal(rows.Deliveries()[0].Body, &withRows)
	if ev.Kind != importer.EventFailures || ev.Counts[importer.Failed] != 6 || len(ev.TopErrors) != 2 ||
		ev.TopErrors[0] != (importer.CodeCount{Code: "pms_rejected", Rows: 4}) || ev.TopErrors[1] != (importer.CodeCount{Code: "invalid_phone", Rows: 2}) {
		t.Errorf("event = %+v, want 6 failed with pms_rejected × 4 and invalid_phone × 2", ev)
	}
	if body := string(plain.Deliveries()[0].Body); strings.Contains(body, "Number") || strings.Contains(body, "example.com") || ev.Rows != nil {
		t.Errorf("a notification without include_rows holds personal data: %s", body)
	}
	if len(withRows.Rows) != 5 || !strings.HasPrefix(withRows.Rows[0].Who, "Resident Number1") || withRows.Rows[0].ErrorCode != "pms_rejected" {
		t.Errorf("rows = %+v, want the first 5 failed rows with their residents' names", withRows.Rows)
	}
}

func mustNormalize(t *testing.T, o importer.Options) importer.Options {
	t.Helper()
	o, err := o.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// An import stopped by rejected credentials is announced as stopped, with
// the reason, once, however many rows ran into the rejection.
func TestStoppedImportIsAnnounced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:1h", nil)
	rx := notifytest.NewReceiver(t, notifySecret, notify.SignatureHeader)
	target, _ := notify.Parse(rx.URL + "/hook")
	e.store.SaveNotifyTarget(ctx, target.ID(), target.Address())
	if _, _, err := e.store.CreateImport(ctx, importer.Import{ID: "imp-stops", File: "roster.csv", CreatedAt: time.Now().UTC(), Total: -1,
		Notify: []importer.NotifyTarget{target.Ref()}, Options: mustNormalize(t, importer.Options{})}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.SetTotal(ctx, "imp-stops", 3, importer.FileColumns{}); err != nil {
		t.Fatal(err)
	}
	bad, _ := propexo.New(propexo.Config{BaseURL: e.api.BaseURL(), APIKey: "wrong"})
	h := jobs.NewImports(bad, e.store, e.queue, e.reports, nil, jobs.Config{Sender: notify.Sender{Secret: notifySecret}})
	for row := 1; row <= 3; row++ {
		if err := h.ProcessTask(ctx, submitTask(t, "imp-stops", row)); err != nil {
			t.Fatal(err)
		}
	}
	startServers(t, e, h, 2, map[string]int{jobs.QueueNotify: 1})
	waitFor(t, 20*time.Second, "no stopped notification", func() bool { return len(rx.Deliveries()) == 1 })
	e.waitQuiet(t, 20*time.Second, nil, jobs.QueueNotify)
	if n := len(rx.Deliveries()); n != 1 {
		t.Fatalf("%d notifications, want 1", n)
	}
	var ev importer.Event
	json.Unmarshal(rx.Deliveries()[0].Body, &ev)
	if ev.Kind != importer.EventStopped || ev.State != "stopped" || !strings.Contains(ev.Reason, "rejected the credentials (401") {
		t.Errorf("event = %+v, want stopped with the reason", ev)
	}
	if strings.Contains(string(rx.Deliveries()[0].Body), "wrong") {
		t.Errorf("the notification holds the API key")
	}
}

// A target that keeps failing is given up after its retries, logged and
// counted; the import is finished all the same.
func TestAFailingTargetNeverHoldsTheImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, "fixed:0s", nil)
	rx := notifytest.NewReceiver(t, notifySecret, notify.SignatureHeader)
	rx.FailNext(1 << 20)
	target, _ := notify.Parse(rx.URL + "/hook")
	e.store.SaveNotifyTarget(ctx, target.ID(), target.Address())
	imp, _, err := e.store.CreateImport(ctx, importer.Import{ID: "imp-deaf", File: "roster.csv", CreatedAt: time.Now().UTC(), Total: -1,
		Notify: []importer.NotifyTarget{target.Ref()}, Options: mustNormalize(t, importer.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	failRows(t, e, imp, 2)
	if got, _ := e.store.Import(ctx, imp.ID); !got.Finished() {
		t.Fatal("the import is not finished")
	}
	info, err := e.insp.GetTaskInfo(jobs.QueueNotify, "notify:imp-deaf.0.failures:"+target.ID())
	if err != nil {
		t.Fatalf("the notify task is not queued under its fixed id: %v", err)
	}
	if info.MaxRetry < 5 {
		t.Errorf("the notify task retries %d times, want a backoff of several tries", info.MaxRetry)
	}
	// Retried at once here, so that the test sees the last try.
	h := jobs.NewImports(nil, e.store, e.queue, e.reports, nil, jobs.Config{Sender: notify.Sender{Secret: notifySecret}})
	startServers(t, e, h, 1, map[string]int{jobs.QueueNotify: 1}, func(cfg *asynq.Config) {
		cfg.RetryDelayFunc = func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond }
	})
	waitFor(t, 30*time.Second, "the failing delivery was not given up", func() bool {
		n, _ := e.rdb.HGet(ctx, "imp:{imp-deaf}:stats", importer.StatNotifyFailed).Int()
		return n == 1
	})
	if got := rx.Attempts(); got != info.MaxRetry+1 {
		t.Errorf("%d attempts, want %d (the first and every retry)", got, info.MaxRetry+1)
	}
}

// A schedule that expects a file and finds none, or is given a file it
// refuses, tells its targets; the firing is recorded for the Schedules page.
func TestScheduleEventsAndFirings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rx := notifytest.NewReceiver(t, notifySecret, notify.SignatureHeader)
	in := newInbox(t, jobs.ScheduledImport{Settle: time.Second, ExpectFile: true})
	target, _ := notify.Parse(rx.URL + "/hook")
	in.store.SaveNotifyTarget(ctx, target.ID(), target.Address())
	in.s.Notify = []importer.NotifyTarget{target.Ref()}

	in.fire(t) // an empty inbox
	in.fire(t) // the same firing's task run again: one event
	last, _, err := in.store.ScheduleHistory(ctx, "test")
	if err != nil || last == nil || last.Outcome != importer.FiringNoFile {
		t.Fatalf("last firing = %+v (%v), want no_file", last, err)
	}

	os.WriteFile(filepath.Join(in.dir, "broken.csv"), []byte("First Name,Last Name\n"), 0o600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(in.dir, "broken.csv"), old, old)
	in.fire(t)
	last, _, _ = in.store.ScheduleHistory(ctx, "test")
	if last.Outcome != importer.FiringRefused || len(last.Refused) != 1 || last.Refused[0] != "broken.csv" {
		t.Errorf("last firing = %+v, want broken.csv refused", last)
	}

	in.drop(t, "roster.csv", 3)
	in.fire(t)
	last, imports, _ := in.store.ScheduleHistory(ctx, "test")
	if last.Outcome != importer.FiringImported || len(last.Imports) != 1 || len(imports) != 1 {
		t.Errorf("last firing = %+v, imports %v; want the roster imported", last, imports)
	}
	statuses, err := in.commands().ScheduleStatuses(ctx, []importer.ScheduleStatus{{Name: "test"}})
	if err != nil || len(statuses) != 1 || statuses[0].Last == nil || statuses[0].Imports[0] != last.Imports[0] {
		t.Errorf("statuses = %+v (%v)", statuses, err)
	}

	h := jobs.NewImports(nil, in.store, in.queue, in.reports, nil, jobs.Config{Sender: notify.Sender{Secret: notifySecret}})
	startServers(t, in.env, h, 1, map[string]int{jobs.QueueNotify: 1})
	waitFor(t, 20*time.Second, "the schedule's events did not arrive", func() bool { return len(rx.Deliveries()) >= 2 })
	in.waitQuiet(t, 20*time.Second, nil, jobs.QueueNotify)
	kinds := map[importer.EventKind]int{}
	for _, d := range rx.Deliveries() {
		var ev importer.Event
		json.Unmarshal(d.Body, &ev)
		kinds[ev.Kind]++
		if ev.Kind == importer.EventFileRefused && (ev.File != "broken.csv" || !strings.Contains(ev.Reason, "no records")) {
			t.Errorf("file refused event = %+v, want the file and the reason", ev)
		}
	}
	if kinds[importer.EventNoFile] != 1 || kinds[importer.EventFileRefused] != 1 || len(kinds) != 2 {
		t.Errorf("events = %v, want one no_file and one file_refused", kinds)
	}
}

// The schedules a running scheduler registered are listed with their next
// firing, once each even when two schedulers register the same entry.
func TestSchedulerEntriesAreListed(t *testing.T) {
	t.Parallel()
	e := envOn(t, redistestClient(t))
	task, opts, err := jobs.NewScheduledImportTask(jobs.ScheduledImport{Name: "nightly", Inbox: "/data/inbox/*.csv", Cron: "30 2 * * *"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s := asynq.NewSchedulerFromRedisClient(e.rdb, &asynq.SchedulerOpts{LogLevel: asynq.ErrorLevel})
		if _, err := s.Register("CRON_TZ=America/New_York 30 2 * * *", task, opts...); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Shutdown)
	}
	var got []importer.ScheduleStatus
	waitFor(t, 15*time.Second, "the schedulers' entries are not listed", func() bool {
		got, err = jobs.SchedulerEntries(e.insp)
		return err == nil && len(got) == 1
	})
	if got[0].Name != "nightly" || got[0].Cron != "30 2 * * *" || got[0].Inbox != "/data/inbox/*.csv" || got[0].Next.IsZero() {
		t.Errorf("entries = %+v", got)
	}
	if ny, _ := time.LoadLocation("America/New_York"); got[0].Next.In(ny).Hour() != 2 || got[0].Next.In(ny).Minute() != 30 {
		t.Errorf("next firing %v, want 02:30 in New York", got[0].Next)
	}
}
