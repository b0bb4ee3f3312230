package sandbox

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/propexo-importer/importer/internal/apispec"
)

// This file holds the sandbox's hold on the published OpenAPI file
// (internal/apispec): every request it gets is checked against the file and
// answered 400 where the API would refuse it, and every answer it gives is
// checked too. Each departure is a violation: counted in Stats, told to
// Config.OnViolation. A test fails on any (see internal/sandboxtest), so
// neither the client nor the sandbox can drift from the file.

// maxViolationsKept bounds the violations Stats lists in words.
const maxViolationsKept = 20

// spec is the published file, read once for every sandbox.
func spec() *apispec.Spec {
	s, err := apispec.Published()
	if err != nil {
		panic("the published OpenAPI file embedded in the build cannot be read: " + err.Error())
	}
	return s
}

// violated records violations: counted, the first few kept in words, each
// told to OnViolation.
func (s *Server) violated(vs []apispec.Violation) {
	if len(vs) == 0 {
		return
	}
	s.mu.Lock()
	s.stats.SpecViolations += len(vs)
	for _, v := range vs {
		if len(s.stats.Violations) < maxViolationsKept {
			s.stats.Violations = append(s.stats.Violations, v.Error())
		}
	}
	report := s.cfg.OnViolation
	s.mu.Unlock()
	if report != nil {
		for _, v := range vs {
			report(v)
		}
	}
}

// checked holds a handler of a documented route to the file: its request
// is checked before it runs (a body the file refuses, or a parameter out
// of its bounds, is answered 400 as the API answers it: Zod's issues), and
// its answer after. A key the file does not declare is refused unless
// the query says ignore_unknown_fields=true, as the docs pages say; a
// query parameter it does not declare is ignored, as the API is assumed
// to ignore it, but still counted: a client has no reason to send one.
func (s *Server) checked(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		file := spec()
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "cannot read the body", nil)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		found := file.Request(r, body)
		s.violated(found)
		if issues := refused(found, r.URL.Query().Get("ignore_unknown_fields") == "true"); len(issues) > 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "Invalid request", issues)
			return
		}
		rec := &capture{ResponseWriter: w, status: http.StatusOK}
		h(rec, r)
		if s.playsOffFile(r) {
			return
		}
		s.violated(file.Answer(r, rec.status, w.Header(), rec.body.Bytes()))
	}
}

// playsOffFile reports whether the answer to r is a variant that the docs
// pages show and the file does not (a write answered {meta: {job_id},
// result}): it is played on purpose, not checked.
func (s *Server) playsOffFile(r *http.Request) bool {
	write := r.Method == http.MethodPut || (r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/residents/"))
	return write && s.cfg.Variants.CreateAnswer == AnswerMeta
}

// refused turns the violations the API answers 400 into its issues: a
// body that breaks the file's schema, a key it does not declare (unless
// ignored), a parameter out of its bounds.
func refused(vs []apispec.Violation, ignoreUnknown bool) []issue {
	var out []issue
	for _, v := range vs {
		switch {
		case v.Kind == apispec.Undeclared && v.In == "body" && !ignoreUnknown:
			out = append(out, issue{Code: "unrecognized_keys", Path: fieldPath(v.Field), Message: "Unrecognized key: " + v.Field})
		case v.Kind == apispec.Invalid && (v.In == "body" || v.In == "query" || v.In == "path"):
			out = append(out, issue{Code: "invalid", Path: fieldPath(v.Field), Message: v.Message})
		}
	}
	slices.SortFunc(out, func(a, b issue) int { return strings.Compare(strings.Join(a.Path, "."), strings.Join(b.Path, ".")) })
	return out
}

func fieldPath(field string) []string {
	if field == "" {
		return []string{}
	}
	return strings.Split(field, ".")
}

// capture keeps what a handler answers, passing it on.
type capture struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *capture) WriteHeader(status int) {
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *capture) Write(b []byte) (int, error) {
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}
