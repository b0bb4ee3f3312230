package ratelimit

import (
	"sync"
	"time"
)

// demand tells whether the budget is what holds this process's requests
// back: the share of its takes, over the last one to two periods (the
// API's window), that could not go at once (the pace made them wait, or a
// pause stopped them).
type demand struct {
	mu               sync.Mutex
	period           time.Duration
	since            time.Time // start of the current period
	waited, took     int       // the current count
	lastWaited, last int       // the period before it
}

// add counts a take, and whether it had to wait.
func (d *demand) add(now time.Time, waited bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.roll(now)
	d.took++
	if waited {
		d.waited++
	}
}

// roll starts a new count as a new period begins (periods on the clock's
// boundaries, so the count before is always of the period just ended).
func (d *demand) roll(now time.Time) {
	start := now.Truncate(d.period)
	switch {
	case start.Equal(d.since):
		return
	case start.Sub(d.since) == d.period:
		d.lastWaited, d.last = d.waited, d.took
	default:
		d.lastWaited, d.last = 0, 0
	}
	d.waited, d.took, d.since = 0, 0, start
}

// scarce is true when most takes of the last period or two waited.
func (d *demand) scarce(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.roll(now)
	took := d.took + d.last
	return took > 0 && 2*(d.waited+d.lastWaited) > took
}
