package notify_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/notify"
	"github.com/propexo-importer/importer/internal/notifytest"
)

func sampleEvent() importer.Event {
	return importer.Event{
		ID: "roster-1a2b.0.failures", Kind: importer.EventFailures, At: time.Date(2026, 11, 28, 2, 4, 0, 0, time.UTC),
		Schedule: "nightly-roster", File: "roster.csv", ImportID: "roster-1a2b", State: "finished", Mode: importer.ModeUpsert, Total: 120,
		Counts:    map[importer.Outcome]int{importer.Succeeded: 9, importer.Unchanged: 108, importer.Failed: 2, importer.Invalid: 1},
		TopErrors: []importer.CodeCount{{Code: "pms_rejected", Rows: 2}, {Code: "invalid_email", Rows: 1}},
		Seconds:   95, Dashboard: "http://dash.example/imports/roster-1a2b",
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		address string
		kind    notify.Kind
		shown   string
		wrong   string
	}{
		{address: "https://hooks.slack.com/services/T0/B0/SECRETTOKEN", kind: notify.Slack, shown: "slack hooks.slack.com"},
		{address: "slack+https://chat.example.com/hooks/SECRETTOKEN", kind: notify.Slack, shown: "slack chat.example.com"},
		{address: "https://ops.example.com/importer?token=SECRETTOKEN", kind: notify.Webhook, shown: "webhook https://ops.example.com/importer"},
		{address: "smtp://alerts@mail.example.com:587?to=ops@example.com", kind: notify.Email, shown: "email smtp://alerts@mail.example.com:587"},
		{address: "smtps://mail.example.com?to=a@example.com,b@example.com", kind: notify.Email, shown: "email smtps://mail.example.com"},
		{address: "smtp://mail.example.com", wrong: "?to="},
		{address: "smtp://mail.example.com:99999?to=a@x", wrong: "port"},
		{address: "ftp://example.com/x", wrong: "scheme"},
		{address: "hooks.slack.com/services/x", wrong: "not a URL"},
	}
	for _, c := range cases {
		target, err := notify.Parse(c.address)
		if c.wrong != "" {
			if err == nil || !strings.Contains(err.Error(), c.wrong) {
				t.Errorf("Parse(%q) = %v, want an error saying %q", c.address, err, c.wrong)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.address, err)
			continue
		}
		if target.Kind != c.kind || target.String() != c.shown {
			t.Errorf("Parse(%q) = %s %q, want %s %q", c.address, target.Kind, target.String(), c.kind, c.shown)
		}
		if again, err := notify.Parse(target.Address()); err != nil || again.Kind != target.Kind || again.ID() != target.ID() {
			t.Errorf("Parse(%q).Address() reads back as %s %v", c.address, again.Kind, err)
		}
		if strings.Contains(target.String()+target.ID(), "SECRETTOKEN") {
			t.Errorf("Parse(%q) shows its secret: %s %s", c.address, target, target.ID())
		}
	}
}

func TestSlackMessageArrives(t *testing.T) {
	rx := notifytest.NewReceiver(t, "", "")
	target, err := notify.Parse("slack+" + rx.URL + "/services/T0/B0/SECRETTOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if err := (notify.Sender{}).Send(context.Background(), target, sampleEvent()); err != nil {
		t.Fatal(err)
	}
	got := rx.Deliveries()
	if len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(got[0].Body, &msg); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Import nightly-roster: roster.csv finished with failures: 3 of 120 rows did not succeed",
		"Rows: 120 (9 succeeded, 108 unchanged, 2 failed, 1 invalid), mode upsert",
		"Top errors: pms_rejected × 2, invalid_email × 1",
		"Dashboard: http://dash.example/imports/roster-1a2b",
	}
	for _, w := range want {
		if !strings.Contains(msg.Text, w) {
			t.Errorf("the Slack message's text lacks %q:\n%s", w, msg.Text)
		}
	}
	if len(msg.Blocks) != 2 || msg.Blocks[0].Type != "header" || msg.Blocks[0].Text.Text != want[0] || !strings.Contains(msg.Blocks[1].Text.Text, want[2]) {
		t.Errorf("blocks = %+v, want a header with the headline and a section with the details", msg.Blocks)
	}
}

func TestWebhookIsSignedAndCarriesTheEvent(t *testing.T) {
	rx := notifytest.NewReceiver(t, "whsec-test", notify.SignatureHeader)
	target, err := notify.Parse(rx.URL + "/hooks/importer")
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent()
	if err := (notify.Sender{Secret: "whsec-test"}).Send(context.Background(), target, ev); err != nil {
		t.Fatal(err)
	}
	got := rx.Deliveries()
	if len(got) != 1 || !got[0].SignatureOK {
		t.Fatalf("deliveries = %+v, want one signed", got)
	}
	if got[0].Header.Get(notify.DeliveryHeader) != ev.ID || got[0].Header.Get(notify.EventHeader) != "failures" {
		t.Errorf("headers = %v", got[0].Header)
	}
	var body importer.Event
	if err := json.Unmarshal(got[0].Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ImportID != ev.ImportID || body.Counts[importer.Failed] != 2 || len(body.TopErrors) != 2 || body.Rows != nil {
		t.Errorf("body = %+v", body)
	}

	// A wrong secret is refused by the receiver, and said so.
	err = (notify.Sender{Secret: "another"}).Send(context.Background(), target, ev)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a delivery signed with another secret: %v, want the receiver's 401", err)
	}
}

func TestWebhookIsNeverSentUnsigned(t *testing.T) {
	rx := notifytest.NewReceiver(t, "", "")
	target, _ := notify.Parse(rx.URL + "/hooks")
	err := (notify.Sender{}).Send(context.Background(), target, sampleEvent())
	if !errors.Is(err, notify.ErrNoSecret) || rx.Attempts() != 0 {
		t.Errorf("Send without a secret = %v with %d requests, want ErrNoSecret and none", err, rx.Attempts())
	}
	if err := (notify.Sender{}).Check(target); !errors.Is(err, notify.ErrNoSecret) {
		t.Errorf("Check = %v, want ErrNoSecret", err)
	}
}

func TestErrorsNeverShowTheAddress(t *testing.T) {
	rx := notifytest.NewReceiver(t, "", "")
	rx.FailNext(1)
	answered, _ := notify.Parse("slack+" + rx.URL + "/services/T0/B0/SECRETTOKEN")
	unreachable, _ := notify.Parse("slack+http://127.0.0.1:1/services/T0/B0/SECRETTOKEN")
	for _, target := range []notify.Target{answered, unreachable} {
		err := (notify.Sender{HTTP: &http.Client{Timeout: 2 * time.Second}}).Send(context.Background(), target, sampleEvent())
		if err == nil {
			t.Fatalf("%s: no error", target)
		}
		if strings.Contains(err.Error(), "SECRETTOKEN") || !strings.Contains(err.Error(), "slack 127.0.0.1") {
			t.Errorf("error %q shows the secret, or does not name the target", err)
		}
	}
}

func TestEmailOverSTARTTLSWithAPassword(t *testing.T) {
	srv := notifytest.NewSMTPServer(t, "alerts", "mail-pass")
	target, err := notify.Parse("smtp://alerts@" + srv.Addr + "?to=ops@example.com,pm@example.com&from=importer@example.com")
	if err != nil {
		t.Fatal(err)
	}
	sender := notify.Sender{SMTPPassword: "mail-pass", TLS: &tls.Config{RootCAs: srv.Roots}}
	if err := sender.Send(context.Background(), target, sampleEvent()); err != nil {
		t.Fatal(err)
	}
	mails := srv.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.User != "alerts" || m.From != "importer@example.com" || strings.Join(m.To, ",") != "ops@example.com,pm@example.com" {
		t.Errorf("mail = TLS %v, user %q, from %q, to %v; want STARTTLS, alerts, importer@example.com, both recipients", m.TLS, m.User, m.From, m.To)
	}
	data := string(m.Data)
	for _, w := range []string{"Subject: Import nightly-roster: roster.csv finished with failures", "Top errors: pms_rejected", "Message-ID: <roster-1a2b.0.failures@importer>"} {
		if !strings.Contains(data, w) {
			t.Errorf("the mail lacks %q:\n%s", w, data)
		}
	}

	// A wrong password is an error naming the target, not its password.
	err = notify.Sender{SMTPPassword: "wrong", TLS: &tls.Config{RootCAs: srv.Roots}}.Send(context.Background(), target, sampleEvent())
	if err == nil || strings.Contains(err.Error(), "wrong") && strings.Contains(err.Error(), "password wrong") {
		t.Errorf("a wrong password: %v", err)
	}
	if len(srv.Mails()) != 1 {
		t.Errorf("a mail was accepted without the password")
	}
	if err := (notify.Sender{}).Check(target); !errors.Is(err, notify.ErrNoPassword) {
		t.Errorf("Check without a password = %v, want ErrNoPassword", err)
	}
}
