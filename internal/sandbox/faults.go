package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// Faults are the misbehaviours the sandbox can inject into API answers, each
// drawn per request from the seeded random source, so a run repeats.
type Faults struct {
	// ErrorRate is the share of requests, 0 to 1, that start a burst of
	// 5xx answers (503 with an error body), ErrorBurst answers long.
	ErrorRate  float64 `json:"error_rate"`
	ErrorBurst int     `json:"error_burst"`
	// DropRate is the share of requests whose answer is lost: the request
	// takes effect (a create makes its job) but the connection is closed
	// before the answer is written.
	DropRate float64 `json:"drop_rate"`
	// SlowRate is the share of answers held back by SlowDelay.
	SlowRate  float64  `json:"slow_rate"`
	SlowDelay Duration `json:"slow_delay"`
	// GatewayErrorRate is the share of requests that take effect (a
	// create makes its job) but are answered with a 5xx, as a gateway
	// does when the API behind it answered too late (502 or 504, with an
	// HTML or a JSON body) or as the API does when it fails after the
	// write (500).
	GatewayErrorRate float64 `json:"gateway_error_rate"`
	// StatusNotFoundRate is the share of write-status reads of a known
	// job answered 404, as an API whose job store lags may answer.
	StatusNotFoundRate float64 `json:"status_not_found_rate"`
	// FailureRate, when set, replaces Config.FailureRate: the share of
	// writes from now on that end in FAILURE (a PMS outage, say).
	FailureRate *float64 `json:"failure_rate,omitempty"`
}

// Duration is a time.Duration that reads and writes as "2s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "2s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

type fault int

const (
	noFault fault = iota
	faultError
	faultDrop
	faultSlow
	faultGateway
)

// drawFault picks the fault of one request. Callers hold mu.
func (s *Server) drawFault() fault {
	f := s.faults
	if s.burstLeft > 0 {
		s.burstLeft--
		s.stats.Faults["error"]++
		return faultError
	}
	if f.ErrorRate == 0 && f.DropRate == 0 && f.SlowRate == 0 && f.GatewayErrorRate == 0 {
		return noFault
	}
	draw := s.rng.Float64()
	switch {
	case draw < f.ErrorRate:
		s.burstLeft = max(f.ErrorBurst, 1) - 1
		s.stats.Faults["error"]++
		return faultError
	case draw < f.ErrorRate+f.DropRate:
		s.stats.Faults["drop"]++
		return faultDrop
	case draw < f.ErrorRate+f.DropRate+f.SlowRate:
		s.stats.Faults["slow"]++
		return faultSlow
	case draw < f.ErrorRate+f.DropRate+f.SlowRate+f.GatewayErrorRate:
		s.stats.Faults["gateway"]++
		return faultGateway
	}
	return noFault
}

func (s *Server) serveWithFault(f fault, w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	switch f {
	case faultError:
		writeError(w, http.StatusServiceUnavailable, "service_unavailable", "The service is temporarily unavailable", nil)
	case faultDrop:
		// Do the work, then lose the answer.
		h(httptest.NewRecorder(), r)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case faultGateway:
		// Do the work, then answer as a gateway that gave up on it.
		h(httptest.NewRecorder(), r)
		s.mu.Lock()
		variant := s.rng.IntN(4)
		s.mu.Unlock()
		writeGatewayError(w, variant)
	case faultSlow:
		s.mu.Lock()
		d := time.Duration(s.faults.SlowDelay)
		s.mu.Unlock()
		if d <= 0 {
			d = 5 * time.Second
		}
		time.Sleep(d)
		h(w, r)
	default:
		h(w, r)
	}
}

// writeGatewayError answers a request that took effect with one of the 5xx
// answers a client may see then: a gateway's 502 or 504 page in HTML, the
// same in JSON, or the API's own 500.
func writeGatewayError(w http.ResponseWriter, variant int) {
	switch variant {
	case 0:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n")
	case 1:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusGatewayTimeout)
		_, _ = io.WriteString(w, "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>\n")
	case 2:
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"message": "Endpoint request timed out"})
	default:
		writeError(w, http.StatusInternalServerError, "internal_server_error", "Internal server error", nil)
	}
}

// Valid reports whether the rates are shares from 0 to 1, those drawn per
// request adding up to at most 1.
func (f Faults) Valid() bool {
	rates := []float64{f.ErrorRate, f.DropRate, f.SlowRate, f.GatewayErrorRate}
	sum := 0.0
	for _, r := range rates {
		if r < 0 {
			return false
		}
		sum += r
	}
	return sum <= 1 && f.StatusNotFoundRate >= 0 && f.StatusNotFoundRate <= 1 &&
		(f.FailureRate == nil || (*f.FailureRate >= 0 && *f.FailureRate <= 1))
}

// SetFaults changes the faults from now on.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults, s.burstLeft = f, 0
	s.mu.Unlock()
}

func (s *Server) getFaults(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) putFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err == nil {
		err = json.Unmarshal(body, &f)
	}
	if err != nil || !f.Valid() {
		writeError(w, http.StatusBadRequest, "invalid_request", "faults: rates from 0 to 1 that add up to at most 1", nil)
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}
