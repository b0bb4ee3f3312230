package sandbox

import (
	"net/http"
	"strconv"
	"time"
)

// countRequest counts one request in the current rate-limit window and sets
// the rate-limit headers. It tells whether the request is over the limit
// (answer 429) and how long to hold the answer back (past 80%). Callers
// hold mu.
func (s *Server) countRequest(h http.Header) (limited bool, hold time.Duration) {
	if s.cfg.RateLimit < 0 {
		return false, 0
	}
	now := s.cfg.Now()
	start := now.Add(-s.cfg.RateWindowOffset).Truncate(s.cfg.RateWindow).Add(s.cfg.RateWindowOffset)
	if !start.Equal(s.window) {
		if !s.window.IsZero() {
			s.stats.Windows = append(s.stats.Windows, WindowUse{Start: s.window, Requests: s.used, Creates: s.stats.Creates - s.createsBefore})
		}
		s.window, s.used, s.createsBefore = start, 0, s.stats.Creates
	}
	s.used++
	limit := s.cfg.RateLimit
	h.Set("x-ratelimit-limit", strconv.Itoa(limit))
	h.Set("x-ratelimit-remaining", strconv.Itoa(max(limit-s.used, 0)))
	if s.used > limit {
		s.stats.RateLimited++
		left := start.Add(s.cfg.RateWindow).Sub(now)
		h.Set("Retry-After", strconv.Itoa(int((left+time.Second-1)/time.Second)))
		return true, 0
	}
	if s.used*5 > limit*4 {
		s.stats.Slowed++
		return false, s.cfg.SlowDelay
	}
	return false, 0
}

// WindowUse is what a rate-limit window that ended counted: every request,
// and the creates accepted in it.
type WindowUse struct {
	Start    time.Time `json:"start"`
	Requests int       `json:"requests"`
	Creates  int       `json:"creates"`
}
