package apispec

import (
	"bytes"
	"io"
	"net/http"
)

// Transport checks every request that goes through it against the file
// before sending it on, and every answer that comes back when Answers is
// set, telling each violation to Report. It changes nothing of what is
// sent or answered: a test wraps a client's transport with it to hold the
// client's requests to the file whatever server answers them.
type Transport struct {
	// Base sends the requests. Default http.DefaultTransport.
	Base http.RoundTripper
	// Spec is the file to check against. Default Published().
	Spec *Spec
	// Answers checks the answers too (a server that plays the API; not a
	// test's fake that answers off the file on purpose).
	Answers bool
	// Report is told every violation. Required.
	Report func(Violation)
}

// RoundTrip checks the request, sends it, and checks the answer.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	spec := t.Spec
	if spec == nil {
		var err error
		if spec, err = Published(); err != nil {
			return nil, err
		}
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
		r.Body.Close()
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	for _, v := range spec.Request(r, body) {
		t.Report(v)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if err != nil || !t.Answers {
		return resp, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	if err != nil {
		return resp, nil // the client meets the same broken body
	}
	for _, v := range spec.Answer(r, resp.StatusCode, resp.Header, answer) {
		t.Report(v)
	}
	return resp, nil
}
