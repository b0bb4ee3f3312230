// Package notify tells people what became of their imports: it sends an
// importer.Event to a Slack incoming webhook (a readable message, through
// slack-go), to any HTTPS endpoint (the event as JSON, signed with
// HMAC-SHA256 as Propexo signs its own webhooks) or by email over SMTP
// (through go-mail, with STARTTLS where the server offers it).
//
// A target's address may hold a secret (a Slack webhook URL does), so it is
// known by an id everywhere else: in imports, schedules and task payloads.
// Target.String shows an address with its secret parts hidden, and no error
// of this package repeats an address.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/wneessen/go-mail"

	"github.com/propexo-importer/importer/importer"
)

// Kind is the kind of a target: how its events are sent.
type Kind string

// The kinds of target.
const (
	Slack   Kind = "slack"
	Webhook Kind = "webhook"
	Email   Kind = "email"
)

// Headers of a webhook delivery.
const (
	// SignatureHeader holds the lowercase hex HMAC-SHA256 of the raw body,
	// keyed with the secret (IMPORTER_NOTIFY_SECRET): the way Propexo
	// signs its webhooks (propexo-signature).
	SignatureHeader = "importer-signature"
	// DeliveryHeader holds the event's id: the same for every attempt, so
	// that a receiver can drop a repeat.
	DeliveryHeader = "importer-delivery"
	// EventHeader names the event (succeeded, failures, stopped...).
	EventHeader = "importer-event"
)

// Target is a parsed notification address with what it wants to hear.
type Target struct {
	Kind Kind
	// address is the address as given (Parse reads it back the same);
	// u, the URL requests go to.
	address string
	u       *url.URL
	// Events and IncludeRows are the target's choices (see
	// importer.NotifyTarget).
	Events      []importer.EventKind
	IncludeRows bool
}

// Parse reads a notification address:
//
//	https://hooks.slack.com/services/...   a Slack incoming webhook
//	slack+https://host/path                a Slack-compatible webhook elsewhere
//	https://host/path                      a signed JSON webhook
//	smtp://user@host:587?to=a@x,b@x&from=importer@x   email (STARTTLS where offered)
//	smtps://user@host:465?to=...           email over TLS from the start
//
// Its errors never repeat the address: it may hold a secret.
func Parse(address string) (Target, error) {
	address = strings.TrimSpace(address)
	u, err := url.Parse(address)
	if err != nil || u.Host == "" {
		return Target{}, errors.New("not a URL: use https://hooks.slack.com/services/..., https://host/path or smtp://user@host:587?to=you@example.com")
	}
	t := Target{address: address, u: u}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "slack+https" || scheme == "slack+http":
		t.Kind = Slack
		u.Scheme = strings.TrimPrefix(scheme, "slack+")
	case (scheme == "https" || scheme == "http") && strings.EqualFold(u.Hostname(), "hooks.slack.com"):
		t.Kind = Slack
	case scheme == "https" || scheme == "http":
		t.Kind = Webhook
	case scheme == "smtp" || scheme == "smtps":
		t.Kind = Email
		if len(t.recipients()) == 0 {
			return Target{}, fmt.Errorf("%s: say who receives the email: ?to=you@example.com (several: to=a@x,b@x)", t)
		}
		if _, _, err := t.hostPort(); err != nil {
			return Target{}, fmt.Errorf("%s: %v", t, err)
		}
	default:
		return Target{}, fmt.Errorf("%s: the scheme %q is not one of https, slack+https, smtp or smtps", t, u.Scheme)
	}
	return t, nil
}

// ID names the target's address without showing it: the start of its
// SHA-256.
func (t Target) ID() string {
	sum := sha256.Sum256([]byte(t.address))
	return hex.EncodeToString(sum[:8])
}

// Address is the target's full address as given, secret parts included:
// for the store that keeps it (Parse reads it back), never for a log.
func (t Target) Address() string { return t.address }

// Ref is how imports, schedules and payloads name the target.
func (t Target) Ref() importer.NotifyTarget {
	return importer.NotifyTarget{ID: t.ID(), Events: t.Events, IncludeRows: t.IncludeRows}
}

// String shows the target with its secrets hidden: a Slack URL's path, a
// webhook's query and credentials, an email's recipients are not shown.
func (t Target) String() string {
	if t.u == nil {
		return "notification target"
	}
	switch t.Kind {
	case Slack:
		return "slack " + t.u.Host
	case Email:
		user := ""
		if t.u.User != nil {
			user = t.u.User.Username() + "@"
		}
		return "email " + t.u.Scheme + "://" + user + t.u.Host
	}
	return "webhook " + t.u.Scheme + "://" + t.u.Host + t.u.Path
}

func (t Target) recipients() []string {
	var out []string
	for _, v := range t.u.Query()["to"] {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out
}

func (t Target) hostPort() (string, int, error) {
	port := 587
	if t.u.Scheme == "smtps" {
		port = 465
	}
	if p := t.u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("port %q is not a port number", p)
		}
		port = n
	}
	return t.u.Hostname(), port, nil
}

// Sender sends events. Its zero value sends with http.DefaultClient and the
// system's roots of trust.
type Sender struct {
	// HTTP sends the Slack and webhook requests. Default: a client with a
	// 30-second timeout.
	HTTP *http.Client
	// Secret keys the HMAC of webhook deliveries
	// (IMPORTER_NOTIFY_SECRET); a webhook is never sent unsigned.
	Secret string
	// SMTPPassword is the password of an email target's user
	// (IMPORTER_SMTP_PASSWORD).
	SMTPPassword string
	// TLS, when set, is the TLS configuration of SMTP connections (tests
	// trust their own server's certificate with it).
	TLS *tls.Config
}

// ErrNoSecret is the error of a webhook delivery without a secret to sign
// it with.
var ErrNoSecret = errors.New("IMPORTER_NOTIFY_SECRET is not set: a webhook notification is never sent unsigned")

// ErrNoPassword is the error of an email target with a user and no password.
var ErrNoPassword = errors.New("IMPORTER_SMTP_PASSWORD is not set: the SMTP server's user needs it")

// Check says what a target needs that the sender lacks (a secret, a
// password): the commands check it before anything is imported.
func (s Sender) Check(t Target) error {
	switch {
	case t.Kind == Webhook && s.Secret == "":
		return fmt.Errorf("%s: %w", t, ErrNoSecret)
	case t.Kind == Email && t.u.User != nil && s.SMTPPassword == "":
		return fmt.Errorf("%s: %w", t, ErrNoPassword)
	}
	return nil
}

// Send delivers an event to a target. Its errors name the target as String
// shows it, never its address.
func (s Sender) Send(ctx context.Context, t Target, e importer.Event) error {
	var err error
	switch t.Kind {
	case Slack:
		err = slack.PostWebhookCustomHTTPContext(ctx, t.u.String(), s.client(), SlackMessage(e))
	case Webhook:
		err = s.sendWebhook(ctx, t, e)
	case Email:
		err = s.sendEmail(ctx, t, e)
	default:
		err = fmt.Errorf("unknown kind %q", t.Kind)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", t, hideURL(err))
	}
	return nil
}

func (s Sender) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// hideURL drops the URL from an HTTP client's error: it may hold a secret.
func hideURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request failed: %w", ue.Op, ue.Err)
	}
	return err
}

// SlackMessage is the Slack message of an event: the headline as a header,
// the details under it, and the whole as text for notifications.
func SlackMessage(e importer.Event) *slack.WebhookMessage {
	headline := e.Headline()
	lines := e.Lines()
	head := headline
	if len(head) > 150 { // a header block's limit
		head = head[:147] + "..."
	}
	blocks := []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, head, false, false))}
	if len(lines) > 0 {
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, strings.Join(lines, "\n"), false, true), nil, nil))
	}
	return &slack.WebhookMessage{
		Text:   headline + "\n" + strings.Join(lines, "\n"),
		Blocks: &slack.Blocks{BlockSet: blocks},
	}
}

// Sign returns the signature of a body: the lowercase hex HMAC-SHA256 keyed
// with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func (s Sender) sendWebhook(ctx context.Context, t Target, e importer.Event) error {
	if s.Secret == "" {
		return ErrNoSecret
	}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.u.String(), bytes.NewReader(body))
	if err != nil {
		return errors.New("cannot make the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(s.Secret, body))
	req.Header.Set(DeliveryHeader, e.ID)
	req.Header.Set(EventHeader, string(e.Kind))
	resp, err := s.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Drained so that the connection is reused; what it says is not read.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

func (s Sender) sendEmail(ctx context.Context, t Target, e importer.Event) error {
	host, port, err := t.hostPort()
	if err != nil {
		return err
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(30 * time.Second)}
	tlsConfig := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLS != nil {
		tlsConfig = s.TLS.Clone()
		tlsConfig.ServerName = host
	}
	opts = append(opts, mail.WithTLSConfig(tlsConfig))
	if t.u.Scheme == "smtps" {
		opts = append(opts, mail.WithSSL())
	} else {
		// STARTTLS where the server offers it.
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	}
	if t.u.User != nil {
		if s.SMTPPassword == "" {
			return ErrNoPassword
		}
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(t.u.User.Username()), mail.WithPassword(s.SMTPPassword))
	}
	client, err := mail.NewClient(host, opts...)
	if err != nil {
		return err
	}
	msg := mail.NewMsg()
	from := t.u.Query().Get("from")
	if from == "" {
		from = "importer@" + mailDomain(host)
	}
	if err := msg.From(from); err != nil {
		return fmt.Errorf("from: %v", err)
	}
	if err := msg.To(t.recipients()...); err != nil {
		return fmt.Errorf("to: %v", err)
	}
	msg.Subject(e.Headline())
	msg.SetGenHeader(mail.HeaderMessageID, "<"+messageIDChars.ReplaceAllString(e.ID, "-")+"@importer>")
	msg.SetGenHeader(mail.HeaderXMailer, "importer")
	msg.SetDate()
	msg.SetBodyString(mail.TypeTextPlain, strings.Join(e.Lines(), "\n")+"\n")
	return client.DialAndSendWithContext(ctx, msg)
}

// messageIDChars are the characters a Message-ID's left part cannot hold.
var messageIDChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// mailDomain is the domain of the default sender: the SMTP server's own,
// less its first label ("smtp.example.com" sends as example.com).
func mailDomain(host string) string {
	if net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return "localhost"
	}
	if _, rest, ok := strings.Cut(host, "."); ok && strings.Contains(rest, ".") {
		return rest
	}
	return host
}
