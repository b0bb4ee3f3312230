package ratelimit

import (
	"sync"
	"time"
)

// demand tells whether the budget is what holds this process's requests
// back: the share of its takes, over the last one to two Periods, that
// could not go at once (the pace made them wait, or a pause stopped them).
type demand struct {
	mu               sync.Mutex
	period           time.Duration
	since            time.Time // start of the current count
	waited, took     int       // the current count
	lastWaited, last int       // the Period before it
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

// roll starts a new count once a Period has passed.
func (d *demand) roll(now time.Time) {
	switch age := now.Sub(d.since); {
	case age >= 2*d.period:
		d.lastWaited, d.last, d.waited, d.took, d.since = 0, 0, 0, 0, now
	case age >= d.period:
		d.lastWaited, d.last, d.waited, d.took, d.since = d.waited, d.took, 0, 0, now
	}
}

// scarce is true when most takes of the last Period or two waited.
func (d *demand) scarce(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.roll(now)
	took := d.took + d.last
	return took > 0 && 2*(d.waited+d.lastWaited) > took
}
