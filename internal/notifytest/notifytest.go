// Package notifytest gives tests real receivers of notifications: an HTTP
// endpoint that plays a Slack incoming webhook or a signed-webhook receiver
// (it checks the signature, and can fail the first deliveries), and an
// embedded SMTP server (emersion/go-smtp) that offers STARTTLS with a
// certificate made for the test and asks for a password.
package notifytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Delivery is one request a Receiver accepted.
type Delivery struct {
	Header http.Header
	Body   []byte
	// SignatureOK tells whether the signature header matched the body
	// (false when the receiver has no secret).
	SignatureOK bool
}

// Receiver is an HTTP endpoint that records what is posted to it.
type Receiver struct {
	URL string
	// secret checks the signature header, when set.
	secret, header string

	mu       sync.Mutex
	failures int
	attempts int
	got      []Delivery
}

// NewReceiver starts a receiver for the test. With a secret, it checks each
// delivery's signature header (header) against it; a delivery whose
// signature does not match is answered 401 and not recorded.
func NewReceiver(t testing.TB, secret, header string) *Receiver {
	r := &Receiver{secret: secret, header: header}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// FailNext makes the receiver answer the next n deliveries 503.
func (r *Receiver) FailNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = n
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.failures > 0 {
		r.failures--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	d := Delivery{Header: req.Header.Clone(), Body: body}
	if r.secret != "" {
		mac := hmac.New(sha256.New, []byte(r.secret))
		mac.Write(body)
		want := hex.EncodeToString(mac.Sum(nil))
		d.SignatureOK = hmac.Equal([]byte(want), []byte(req.Header.Get(r.header)))
		if !d.SignatureOK {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
	}
	r.got = append(r.got, d)
	_, _ = w.Write([]byte("ok"))
}

// Deliveries returns what the receiver accepted so far.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

// Attempts is how many requests reached the receiver, failed ones included.
func (r *Receiver) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// Mail is a message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	// TLS tells whether the message came over a connection upgraded with
	// STARTTLS; User is who authenticated.
	TLS  bool
	User string
}

// SMTPServer is an embedded SMTP server that offers STARTTLS and accepts
// one user, with its password, only over TLS.
type SMTPServer struct {
	// Addr is the server's host:port; Roots trust its certificate.
	Addr  string
	Roots *x509.CertPool

	user, password string
	mu             sync.Mutex
	failures       int
	mails          []Mail
}

// NewSMTPServer starts an SMTP server for the test on a free port.
func NewSMTPServer(t testing.TB, user, password string) *SMTPServer {
	cert, roots := selfSigned(t)
	s := &SMTPServer{Roots: roots, user: user, password: password}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &session{srv: s, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }() // ends with Close
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// FailNext makes the server refuse the next n messages (a 451 after DATA).
func (s *SMTPServer) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = n
}

// Mails returns the messages accepted so far.
func (s *SMTPServer) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

type session struct {
	srv  *SMTPServer
	conn *smtp.Conn
	mail Mail
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.srv.user || password != s.srv.password {
			return errors.New("invalid credentials")
		}
		s.mail.User = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.srv.user != "" && s.mail.User == "" {
		return smtp.ErrAuthRequired
	}
	s.mail.From = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.mail.To = append(s.mail.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		return err
	}
	_, s.mail.TLS = s.conn.TLSConnectionState()
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.failures > 0 {
		s.srv.failures--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	m := s.mail
	m.Data = b.Bytes()
	s.srv.mails = append(s.srv.mails, m)
	return nil
}

func (s *session) Reset() { s.mail = Mail{User: s.mail.User} }

func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "notifytest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
