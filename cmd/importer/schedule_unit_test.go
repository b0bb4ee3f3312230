package main

import (
	"testing"
	"time"
)

// A firing 27 s ahead is "in 27s", not "in 0s" (issue 22).
func TestUntilFiring(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		27 * time.Second:                             "in 27s",
		59*time.Second + 400*time.Millisecond:        "in 59s",
		90 * time.Second:                             "in 2m",
		5*time.Hour + 3*time.Minute + 10*time.Second: "in 5h3m",
		0:            "due",
		-time.Second: "due",
	} {
		if got := untilFiring(d); got != want {
			t.Errorf("untilFiring(%v) = %q, want %q", d, got, want)
		}
	}
}
