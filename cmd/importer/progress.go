package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/propexo-importer/importer/importer"
)

// progress shows how far an import has come: a bar on a terminal, a line
// every few seconds elsewhere (logs, cron mail), and at least every 30
// seconds even when nothing changed. Its rate counts the rows sent and
// resolved, in rows a minute: invalid and duplicate rows, resolved at once,
// would make it absurd.
type progress struct {
	w        io.Writer
	id       string
	bar      *progressbar.ProgressBar
	tty      bool
	last     importer.Progress
	lastLine time.Time
	began    time.Time
	now      func() time.Time
	closed   bool
}

func newProgress(w io.Writer, id string) *progress {
	p := &progress{w: w, id: id, began: time.Now(), now: time.Now}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	return p
}

// sentResolved counts the rows that were sent and have their outcome.
func sentResolved(pr importer.Progress) int {
	return pr.Resolved - pr.Counts[importer.Invalid] - pr.Counts[importer.Duplicate] - pr.Counts[importer.Cancelled]
}

// rate is the rows sent and resolved a minute since the wait began.
func (p *progress) rate(pr importer.Progress) string {
	minutes := p.now().Sub(p.began).Minutes()
	if minutes < 0.05 {
		return "… rows/min"
	}
	return fmt.Sprintf("%.0f rows/min", float64(sentResolved(pr))/minutes)
}

func (p *progress) update(pr importer.Progress) {
	if p.closed {
		return
	}
	if p.tty {
		if p.bar == nil && pr.Total >= 0 {
			p.bar = progressbar.NewOptions(pr.Total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(p.id),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(200*time.Millisecond))
			p.bar.Set(pr.Resolved)
		}
		if p.bar != nil {
			p.bar.Describe(p.id + " " + p.rate(pr))
			if pr.Resolved != p.last.Resolved {
				p.bar.Set(pr.Resolved)
			}
		}
		p.last = pr
		return
	}
	changed := pr.Resolved != p.last.Resolved || pr.Total != p.last.Total
	since := p.now().Sub(p.lastLine)
	if p.lastLine.IsZero() || (changed && since >= 5*time.Second) || since >= 30*time.Second {
		total := "?"
		if pr.Total >= 0 {
			total = fmt.Sprint(pr.Total)
		}
		fmt.Fprintf(p.w, "%s: %d of %s rows resolved (%d succeeded), %s\n", p.id, pr.Resolved, total, pr.Counts[importer.Succeeded], p.rate(pr))
		p.lastLine = p.now()
	}
	p.last = pr
}

// say prints a line of news between progress lines.
func (p *progress) say(msg string) {
	if p.bar != nil {
		p.bar.Clear()
	}
	fmt.Fprintln(p.w, msg)
}

func (p *progress) close() {
	if p.closed {
		return
	}
	p.closed = true
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
