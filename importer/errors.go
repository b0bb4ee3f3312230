package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrImportNotFound is returned for an import id the store does not know.
var ErrImportNotFound = errors.New("import not found")

// ErrNotReplicated is returned by a store's Move to a sending phase when
// Redis has replicas and none of them confirmed the mark in time: a
// failover could lose it, and with it the knowledge that the row's create
// was sent, so the row is not sent now (it is tried again shortly).
var ErrNotReplicated = errors.New("no replica of Redis confirmed the write in time")

// ReadableErrors turns a write's errors — from its status or a webhook —
// into sentences. A PMS's stringified JSON is unpacked to its message;
// anything else is kept as compact text.
func ReadableErrors(errs []any) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, readable(e))
	}
	return out
}

func readable(e any) string {
	switch v := e.(type) {
	case string:
		trimmed := strings.TrimSpace(v)
		if strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[") || strings.HasPrefix(trimmed, `"`) {
			var inner any
			if json.Unmarshal([]byte(trimmed), &inner) == nil {
				return readable(inner)
			}
		}
		return trimmed
	case map[string]any:
		msg := ""
		for _, k := range []string{"Message", "message", "error_description", "error", "detail", "Detail", "title"} {
			if m, ok := v[k]; ok && m != nil {
				msg = readable(m)
				break
			}
		}
		if msg == "" {
			b, _ := json.Marshal(v)
			return string(b)
		}
		for _, k := range []string{"StatusCode", "status", "code", "Code"} {
			if c, ok := v[k]; ok && c != nil {
				return fmt.Sprintf("%s (%v)", msg, c)
			}
		}
		return msg
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = readable(x)
		}
		return strings.Join(parts, "; ")
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// pmsStatus finds the HTTP status a readable PMS error ends with
// ("Property not found (400)").
var pmsStatus = regexp.MustCompile(`\((\d{3})\)\s*$`)

// transientWords mark a PMS error that may pass on a retry.
var transientWords = []string{"maintenance", "unavailable", "timeout", "timed out", "try again", "temporar", "too many requests", "rate limit", "busy", "overloaded"}

// FailureCode is the error code of a write the PMS ended in FAILURE, by
// its errors (made readable): CodeWriteFailed for one that may pass on a
// retry (an outage, maintenance, a timeout, or nothing said), or
// CodePMSRejected for one the PMS refused for its data (a 4xx of its own
// other than 408 and 429): retry-write would fail the same way.
func FailureCode(errs []string) string {
	rejected := false
	for _, e := range errs {
		lower := strings.ToLower(e)
		for _, w := range transientWords {
			if strings.Contains(lower, w) {
				return CodeWriteFailed
			}
		}
		if m := pmsStatus.FindStringSubmatch(e); m != nil {
			status, _ := strconv.Atoi(m[1])
			switch {
			case status >= 500 || status == 408 || status == 429:
				return CodeWriteFailed
			case status >= 400:
				rejected = true
			}
		}
	}
	if rejected {
		return CodePMSRejected
	}
	return CodeWriteFailed
}
