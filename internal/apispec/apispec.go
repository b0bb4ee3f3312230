// Package apispec holds the resident-write part of Propexo's published
// OpenAPI 3.1 file (propexo-openapi.yml, copied as published) and checks
// HTTP requests and answers against it with pb33f's libopenapi-validator,
// in strict mode: a body key or a query parameter the file does not
// declare is a violation too, as the API answers 400 to an unknown field.
//
// The sandbox checks every request it gets and every answer it gives, so
// that neither the client nor the sandbox can agree with the other on a
// mistake the file would catch; the client's tests check its requests
// against fakes that are not the sandbox the same way (Transport).
package apispec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi/datamodel/high/base"
)

// published is the file as Propexo publishes it.
//
//go:embed propexo-openapi.yml
var published []byte

// The published file has two slips of its conversion to OpenAPI 3.1, and
// is read with both mended (Readable); nothing else is changed:
//   - it lists Ontario in the PUT's state enum as the boolean true: a YAML
//     1.1 reader took the unquoted ON for a boolean on the way;
//   - a nullable enum (the read model's phone_1_type, say) says
//     type: [string, 'null'] but leaves null out of its enum, which JSON
//     Schema then refuses: null is added to such an enum, as the type says.
var (
	ontarioWas   = []byte("          - NU\n          - true\n")
	ontarioIs    = []byte("          - NU\n          - 'ON'\n")
	nullableEnum = regexp.MustCompile(`(?m)^( +)type:\n +- string\n +- 'null'\n +enum:\n`)
)

// Readable returns the file with its two slips mended (see above), and how
// many places were mended.
func Readable(file []byte) ([]byte, int) {
	n := bytes.Count(file, ontarioWas)
	file = bytes.ReplaceAll(file, ontarioWas, ontarioIs)
	n += len(nullableEnum.FindAllIndex(file, -1))
	file = nullableEnum.ReplaceAllFunc(file, func(m []byte) []byte {
		indent := nullableEnum.FindSubmatch(m)[1]
		return slices.Concat(m, indent, []byte("- null\n"))
	})
	return file, n
}

// Kind says what is wrong.
type Kind string

// The kinds of violations.
const (
	// Invalid: a value breaks the file's schema (a type, an enum, a
	// format, a required field, a bound), or the file has no such
	// operation.
	Invalid Kind = "invalid"
	// Undeclared: a body key, query parameter or header the file does not
	// declare. The API answers 400 to an unknown body key (unless the
	// query says ignore_unknown_fields=true) and is assumed to ignore an
	// unknown query parameter.
	Undeclared Kind = "undeclared"
)

// Violation is one way a request or an answer departs from the file.
type Violation struct {
	// Side is "request" or "answer".
	Side string
	// Method and Route name the operation: the file's path template
	// (/v1/residents/{id}).
	Method, Route string
	// Status is the answer's HTTP status; 0 for a request.
	Status int
	Kind   Kind
	// In is where: body, query, header, path or status.
	In string
	// Field is the key or parameter, as a path in the body
	// ("phone_1_type", "results[0].lease_id"), or a parameter's name.
	Field string
	// Message says what is wrong.
	Message string
}

func (v Violation) Error() string {
	where := v.In
	if v.Field != "" {
		where += " " + v.Field
	}
	subject := v.Method + " " + v.Route
	if v.Side == "answer" {
		subject = fmt.Sprintf("the %d answer to %s", v.Status, subject)
	}
	return fmt.Sprintf("%s: %s: %s (%s)", subject, where, v.Message, v.Kind)
}

// Spec is the published file, ready to check requests and answers. It is
// safe for concurrent use.
type Spec struct {
	v      validator.Validator
	routes []route
	// bodies holds the properties each operation's request body declares,
	// by "METHOD /template".
	bodies map[string][]string
}

type route struct {
	template string
	re       *regexp.Regexp
	methods  []string
}

var (
	loaded  *Spec
	loadErr error
	once    sync.Once
)

// Published returns the published file, read once.
func Published() (*Spec, error) {
	once.Do(func() { loaded, loadErr = Load(published) })
	return loaded, loadErr
}

// File returns the published file's bytes, as published.
func File() []byte { return slices.Clone(published) }

// Load reads an OpenAPI 3.1 file.
func Load(file []byte) (*Spec, error) {
	file, _ = Readable(file)
	doc, err := libopenapi.NewDocument(file)
	if err != nil {
		return nil, fmt.Errorf("error reading the OpenAPI file: %w", err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("error reading the OpenAPI file: %w", err)
	}
	v := validator.NewValidatorFromV3Model(&model.Model,
		config.WithStrictMode(),
		config.WithFormatAssertions(),
	)
	s := &Spec{v: v, bodies: map[string][]string{}}
	for p := model.Model.Paths.PathItems.First(); p != nil; p = p.Next() {
		template := p.Key()
		r := route{template: template, re: regexp.MustCompile("^" + templateRegexp(template) + "$")}
		for op := p.Value().GetOperations().First(); op != nil; op = op.Next() {
			method := strings.ToUpper(op.Key())
			r.methods = append(r.methods, method)
			if body := op.Value().RequestBody; body != nil && body.Content != nil {
				if media, ok := body.Content.Get("application/json"); ok && media.Schema != nil {
					s.bodies[method+" "+template] = propertiesOf(media.Schema.Schema())
				}
			}
		}
		s.routes = append(s.routes, r)
	}
	return s, nil
}

// templateRegexp turns a path template into a regular expression: each
// {parameter} is one path segment.
func templateRegexp(template string) string {
	var b strings.Builder
	for i, part := range strings.Split(template, "/") {
		if i > 0 {
			b.WriteString("/")
		}
		if strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") {
			b.WriteString(`[^/]+`)
			continue
		}
		b.WriteString(regexp.QuoteMeta(part))
	}
	return b.String()
}

func propertiesOf(s *base.Schema) []string {
	if s == nil || s.Properties == nil {
		return nil
	}
	var out []string
	for p := s.Properties.First(); p != nil; p = p.Next() {
		out = append(out, p.Key())
	}
	slices.Sort(out)
	return out
}

// vendorPath matches the per-vendor write paths (/v1/residents/rentmanager/,
// /v1/residents/rentmanager/{id}), which the file does not list: the
// vendors' own pages document them as the generic operations with narrower
// bodies, so they are checked as the generic ones.
var vendorPath = regexp.MustCompile(`^/v1/residents/[a-z_]+/(.*)$`)

// operation finds the file's operation for a method and a path: its
// template, and whether the file documents the path at all (an endpoint
// it leaves out, such as GET /v1/admin/integrations/, is not checked).
func (s *Spec) operation(method, path string) (template string, documented, hasMethod bool) {
	if m := vendorPath.FindStringSubmatch(path); m != nil {
		path = "/v1/residents/" + m[1]
	}
	for _, r := range s.routes {
		if r.re.MatchString(path) {
			return r.template, true, slices.Contains(r.methods, method)
		}
	}
	return "", false, false
}

// Documents reports whether the file has the operation of a method and a
// path (a per-vendor write path counts as its generic operation).
func (s *Spec) Documents(method, path string) bool {
	_, documented, hasMethod := s.operation(method, path)
	return documented && hasMethod
}

// BodyFields lists the keys the request body of an operation declares,
// sorted; nil for an operation without a body or one the file lacks.
func (s *Spec) BodyFields(method, path string) []string {
	template, _, _ := s.operation(method, path)
	return slices.Clone(s.bodies[method+" "+template])
}

// Request checks a request whose body (nil for none) has been read: the
// request's own Body is not touched. A path the file does not document
// is not checked.
func (s *Spec) Request(r *http.Request, body []byte) []Violation {
	template, documented, hasMethod := s.operation(r.Method, r.URL.Path)
	if !documented {
		return nil
	}
	if !hasMethod {
		return []Violation{{Side: "request", Method: r.Method, Route: template, Kind: Invalid, In: "path",
			Message: "the published file has no " + r.Method + " " + template}}
	}
	req := s.rewritten(r, body)
	_, errs := s.v.ValidateHttpRequestSync(req)
	return violations("request", r.Method, template, 0, errs)
}

// Answer checks an answer to a request. An answer whose status the file
// does not list for the operation (401, 404, 405, 429, a 5xx: the docs
// pages describe them) must carry the file's error body when it is JSON.
func (s *Spec) Answer(r *http.Request, status int, header http.Header, body []byte) []Violation {
	template, documented, hasMethod := s.operation(r.Method, r.URL.Path)
	if !documented || !hasMethod {
		return nil
	}
	if status != http.StatusOK && status != http.StatusBadRequest {
		return errorBody(r.Method, template, status, header, body)
	}
	req := s.rewritten(r, nil)
	resp := &http.Response{StatusCode: status, Header: header.Clone(), Body: io.NopCloser(bytes.NewReader(body)), Request: req}
	if resp.Header.Get("Content-Type") == "" {
		resp.Header.Set("Content-Type", "application/json")
	}
	_, errs := s.v.ValidateHttpResponse(req, resp)
	return violations("answer", r.Method, template, status, errs)
}

// rewritten is a copy of r on the generic path of a per-vendor one, with
// body as its body.
func (s *Spec) rewritten(r *http.Request, body []byte) *http.Request {
	req := r.Clone(r.Context())
	if m := vendorPath.FindStringSubmatch(req.URL.Path); m != nil {
		u := *req.URL
		u.Path, u.RawPath = "/v1/residents/"+m[1], ""
		req.URL = &u
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return req
}

// errorBody checks an answer of a status the operation does not list: a
// JSON body must be the file's errorResponse ({"error": {"code",
// "message"}}).
func errorBody(method, template string, status int, header http.Header, body []byte) []Violation {
	if !strings.Contains(header.Get("Content-Type"), "json") {
		return nil // a gateway's HTML page: not the API's own answer
	}
	if err := checkErrorResponse(body); err != nil {
		return []Violation{{Side: "answer", Method: method, Route: template, Status: status, Kind: Invalid, In: "body", Message: err.Error()}}
	}
	return nil
}

// openObject matches the keys inside the objects the file leaves open
// ("properties: {}": any key): a write's data, custom_data, a log's
// parameters, meta.orderBy's items, an error's details. (Strict mode's own
// ignore paths would do it, at the cost of compiling them on every check.)
var openObject = regexp.MustCompile(`^(data\.|meta\.orderBy\[\d+\]\.|error\.details\.)|(^|\.)(custom_data|parameters)\.`)

var atPath = regexp.MustCompile(`at '\$\.(?:body|query|header|path)\.?([^']*)'`)

func violations(side, method, template string, status int, errs []*verrors.ValidationError) []Violation {
	var out []Violation
	for _, e := range errs {
		v := Violation{Side: side, Method: method, Route: template, Status: status, Kind: Invalid, In: e.ValidationType, Field: e.ParameterName, Message: e.Message}
		if e.ValidationType == verrors.StrictValidationType {
			v.Kind = Undeclared
			switch e.ValidationSubType {
			case verrors.StrictSubTypeQuery:
				v.In = "query"
			case verrors.StrictSubTypeHeader:
				v.In = "header"
			default:
				v.In = "body"
			}
			if m := atPath.FindStringSubmatch(e.Message); m != nil && v.In == "body" {
				v.Field = m[1]
			}
			if v.In == "body" && openObject.MatchString(v.Field) {
				continue
			}
			out = append(out, v)
			continue
		}
		switch e.ValidationType {
		case "requestBody", "response":
			v.In = "body"
		case "parameter":
			v.In = e.ValidationSubType
		}
		if len(e.SchemaValidationErrors) == 0 {
			if e.Reason != "" {
				v.Message += ": " + e.Reason
			}
			out = append(out, v)
			continue
		}
		for _, f := range e.SchemaValidationErrors {
			one := v
			if field := strings.TrimPrefix(strings.TrimPrefix(f.FieldPath, "$"), "."); field != "" {
				one.Field = field
			}
			one.Message = f.Reason
			out = append(out, one)
		}
	}
	return out
}

// checkErrorResponse checks a body against the file's errorResponse: an
// object whose error has a code and a message, both strings.
func checkErrorResponse(body []byte) error {
	var answer struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return fmt.Errorf("not the file's errorResponse: %v", err)
	}
	if answer.Error == nil || answer.Error.Code == nil || answer.Error.Message == nil {
		return errors.New("not the file's errorResponse: error.code and error.message are required")
	}
	return nil
}
