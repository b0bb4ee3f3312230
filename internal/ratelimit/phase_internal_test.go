package ratelimit

import (
	"testing"
	"time"
)

// Arcs narrow each other on the circle of a period, across its wrap too; a
// new arc that does not meet the known one replaces it.
func TestArcsIntersectOnTheCircle(t *testing.T) {
	s := time.Second
	tests := []struct {
		a, b, want arc
	}{
		{arc{21 * s, 3 * s}, arc{22900 * time.Millisecond, 400 * time.Millisecond}, arc{22900 * time.Millisecond, 400 * time.Millisecond}},
		{arc{22 * s, 2 * s}, arc{23 * s, 3 * s}, arc{23 * s, s}},
		{arc{59 * s, 2 * s}, arc{500 * time.Millisecond, 2 * s}, arc{500 * time.Millisecond, 500 * time.Millisecond}}, // 59s..1s and 0.5s..2.5s
		{arc{58 * s, 4 * s}, arc{59 * s, 3 * s}, arc{59 * s, 3 * s}},
		{arc{10 * s, s}, arc{40 * s, s}, arc{40 * s, s}}, // moved: the new one wins
	}
	for _, tt := range tests {
		if got := tt.a.intersect(tt.b, time.Minute); got != tt.want {
			t.Errorf("%v ∩ %v = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// The end of the window that holds a time, by the latest start an arc
// allows.
func TestArcEnd(t *testing.T) {
	a := arc{from: 22 * time.Second, width: time.Second} // windows start at :23 at the latest
	at := func(sec int) time.Time { return time.Date(2026, 12, 7, 12, 1, sec, 0, time.UTC) }
	for _, tt := range []struct {
		t, want time.Time
	}{
		{at(10), at(23)},
		{at(23), at(23).Add(time.Minute)},
		{at(50), at(23).Add(time.Minute)},
	} {
		if got := a.end(tt.t, time.Minute); !got.Equal(tt.want) {
			t.Errorf("end(%v) = %v, want %v", tt.t.Format("15:04:05"), got.Format("15:04:05"), tt.want.Format("15:04:05"))
		}
	}
}

// A wide arc (a pause between the two answers) gives way to a narrow one;
// two narrow ones intersect.
func TestNarrowPrefersWhatIsNarrower(t *testing.T) {
	s := time.Second
	wide, narrowArc := arc{10 * s, 40 * s}, arc{23 * s, s}
	for _, tt := range []struct {
		known arc
		ok    bool
		seen  arc
		want  arc
	}{
		{arc{}, false, wide, wide},
		{wide, true, narrowArc, narrowArc},
		{narrowArc, true, wide, narrowArc},
		{narrowArc, true, arc{23500 * time.Millisecond, s}, arc{23500 * time.Millisecond, 500 * time.Millisecond}},
	} {
		if got := narrow(tt.known, tt.ok, tt.seen, time.Minute); got != tt.want {
			t.Errorf("narrow(%v, %v, %v) = %v, want %v", tt.known, tt.ok, tt.seen, got, tt.want)
		}
	}
}
