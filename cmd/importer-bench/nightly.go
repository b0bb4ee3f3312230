package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/propexo-importer/importer/internal/sandbox"
)

// The nightly roster: changed, new and gone residents of night 2.
const (
	nightChanged = 20
	nightNew     = 10
	nightGone    = 5
)

// nightly: a roster imported on night 1, then night 2's file (20 changed,
// 10 new, 5 gone, in another order). What night 2 sends, who it creates
// twice, how many updates change nothing; the same with the sandbox's cache
// lag longer than the gap between the nights; importer plan on night 2; and
// a create-only night 2 for contrast. The API is not rate limited here, to
// keep night 1 short: night 2's API time is its requests over the API's
// 150 a minute.
func nightly(h *harness) ([]figure, error) {
	rows := h.size(5000)
	night1, night2 := filepath.Join(h.dir, "night-1.csv"), filepath.Join(h.dir, "night-2.csv")
	if err := writeResidents(night1, rows, "n"); err != nil {
		return nil, err
	}
	if err := writeNextNight(night1, night2); err != nil {
		return nil, err
	}
	pages := float64((rows + 249) / 250)
	var figs []figure
	for _, v := range []struct {
		name, lag, mode string
	}{{"", "0s", "upsert"}, {"cache lag 1h", "1h", "upsert"}, {"create-only", "0s", "create"}} {
		s, err := h.newStack(stackConfig{latency: "uniform:200ms-1s", sandboxLimit: -1, workers: 1, concurrency: 16,
			sandboxArgs: []string{"--cache-lag", v.lag}})
		if err != nil {
			return nil, err
		}
		night, err := runNights(h, s, night1, night2, v.mode+"-"+v.lag, v.mode, v.name == "")
		var ledger int64
		if err == nil && v.name == "" {
			ledger, err = s.redis.rdb.MemoryUsage(context.Background(), "importer:ledger:{int_rentmanager_demo}").Result()
		}
		s.close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.mode+" "+v.lag, err)
		}
		h.say("nightly %s: night 2 sent %d requests (%d creates, %d updates, %d changing nothing, %d listing pages); %d residents created twice; %d departures from the published OpenAPI file",
			v.mode+" lag "+v.lag, night.requests, night.creates, night.updates, night.noop, night.lists, night.twice, night.violations)
		label := "night 2"
		if v.name != "" {
			label += ", " + v.name
		}
		switch v.mode {
		case "create":
			figs = append(figs,
				measured(label+": API requests", "req", float64(night.requests)),
				measured(label+": residents created twice", "", float64(night.twice)))
			continue
		case "upsert":
			offPlan := math.Abs(float64(night.creates-nightNew)) + math.Abs(float64(night.updates-nightChanged))
			figs = append(figs,
				atMostFig(label+": residents created twice", "", 0, float64(night.twice)),
				atMostFig(label+": writes off the plan (creates ≠ 10, updates ≠ 20)", "", 0, offPlan),
				atMostFig(label+": requests and answers off the published OpenAPI file (both nights)", "", 0, float64(night.violations)))
		}
		if v.name == "" {
			figs = append(figs,
				// The run checks the key with one request before it starts.
				atMostFig(label+": API requests (listing pages + 30 writes + their status checks + 5)", "req", pages+2*(nightNew+nightChanged)+5, float64(night.requests)),
				atMostFig(label+": API time at 150 req/min", "min", 1, float64(night.requests)/150),
				atMostFig(label+": updates that change nothing", "", 0, float64(night.noop)),
				measured("the ledger in Redis, per resident written", "B", float64(ledger)/float64(rows+nightNew)),
				// plan, like run, checks the key with one request first.
				atMostFig("importer plan of night 2: requests beyond the listing's pages and the key's check", "req", 0, float64(night.planRequests)-pages-1))
		}
	}
	return figs, nil
}

// nightCounts is what the sandbox saw of night 2.
type nightCounts struct {
	requests, creates, updates, noop, lists, twice, planRequests int
	// violations are the sandbox's departures from the published OpenAPI
	// file, both nights and the plan.
	violations int
}

// runNights imports night 1, then (with plan, after an importer plan of it)
// night 2, in mode, and counts night 2. tag keeps the import ids of each
// variant apart: the reports folder is shared, and an import id it has a
// receipt of, on a new Redis, would be recovered (each row looked up).
func runNights(h *harness, s *stack, night1, night2, tag, mode string, plan bool) (nightCounts, error) {
	var c nightCounts
	if _, err := s.importFile(night1, "night-1-"+tag, 15*time.Minute, "--mode", mode); err != nil {
		return c, err
	}
	before, err := s.stats()
	if err != nil {
		return c, err
	}
	if plan {
		if _, err := s.command(5*time.Minute, "plan", night2, "--report-dir", h.dir+"/reports"); err != nil {
			return c, err
		}
		after, err := s.stats()
		if err != nil {
			return c, err
		}
		c.planRequests = requests(after) - requests(before)
		before = after
	}
	if _, err := s.importFile(night2, "night-2-"+tag, 15*time.Minute, "--mode", mode); err != nil {
		return c, err
	}
	after, err := s.stats()
	if err != nil {
		return c, err
	}
	c.requests = requests(after) - requests(before)
	c.creates, c.updates = after.Creates-before.Creates, after.Updates-before.Updates
	c.noop, c.lists = after.NoopUpdates-before.NoopUpdates, after.Requests["list_residents"]-before.Requests["list_residents"]
	c.twice = createdTwice(after)
	c.violations = after.SpecViolations
	return c, nil
}

func createdTwice(st sandbox.Stats) int {
	n := 0
	for _, k := range st.ResidentsByIdentity {
		n += max(k-1, 0)
	}
	return n
}

// writeNextNight writes the next night's roster from a night's file: the
// first nightGone residents gone, the next nightChanged with a new phone
// number, nightNew new residents, and every line in reverse order.
func writeNextNight(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	lines, err := csv.NewReader(in).ReadAll()
	in.Close()
	if err != nil {
		return err
	}
	header, body := lines[0], lines[1:]
	phone := slices.Index(header, "Phone")
	email := slices.Index(header, "E-mail")
	last := slices.Index(header, "Last Name")
	if phone < 0 || email < 0 || last < 0 || len(body) < nightGone+nightChanged+nightNew {
		return fmt.Errorf("%s is not a roster of %d residents or more", from, nightGone+nightChanged+nightNew)
	}
	body = body[nightGone:]
	for i := range nightChanged {
		body[i][phone] = fmt.Sprintf("(555) 777-%04d", i)
	}
	for i := range nightNew {
		r := slices.Clone(body[len(body)-1-i])
		r[last], r[email] = fmt.Sprintf("Newcomer%d", i), fmt.Sprintf("newcomer%d@example.com", i)
		body = append(body, r)
	}
	slices.Reverse(body)
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(out)
	if err := w.WriteAll(append([][]string{header}, body...)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
