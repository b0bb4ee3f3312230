package main

import (
	"context"
	"strings"

	"github.com/spf13/pflag"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/notify"
	"github.com/propexo-importer/importer/internal/schedule"
	"github.com/propexo-importer/importer/internal/store"
	"github.com/propexo-importer/importer/jobs"
)

// notifySettings are the flags of notifications: run's targets (told about
// its import) or a worker's (told about every import no schedule started),
// and what a sender needs from the environment.
type notifySettings struct {
	addresses   []string
	events      []string
	includeRows bool
	dashboard   string
	sender      notify.Sender
}

func (n *notifySettings) register(f *pflag.FlagSet, getenv env, whose string) {
	f.StringArrayVar(&n.addresses, "notify", strings.Fields(getenv("IMPORTER_NOTIFY")), "tell a target about "+whose+": a Slack incoming-webhook URL, an https:// webhook (signed with IMPORTER_NOTIFY_SECRET) or smtp://user@host:587?to=you@example.com (password in IMPORTER_SMTP_PASSWORD); repeatable "+envTag("IMPORTER_NOTIFY")+" (space-separated)")
	if len(n.addresses) > 0 {
		// A Slack URL holds a secret: --help does not show it.
		f.Lookup("notify").DefValue = "[from IMPORTER_NOTIFY]"
	}
	f.StringSliceVar(&n.events, "notify-on", nil, "events the --notify targets are told about: "+importer.EventNames()+" (default all)")
	f.BoolVar(&n.includeRows, "notify-rows", false, "put the first failed rows (with the residents' names) in notifications; by default they hold counts and error codes only")
	f.StringVar(&n.dashboard, "dashboard-url", getenv("IMPORTER_DASHBOARD_URL"), "the dashboard's address, for the links in notifications, e.g. https://importer.example.com "+envTag("IMPORTER_DASHBOARD_URL"))
	n.sender = notify.Sender{Secret: getenv("IMPORTER_NOTIFY_SECRET"), SMTPPassword: getenv("IMPORTER_SMTP_PASSWORD")}
}

// targets parses the --notify targets and checks that this process can
// send to them (a webhook's secret, an SMTP user's password).
func (n *notifySettings) targets() ([]notify.Target, error) {
	events, err := importer.ParseEvents(n.events)
	if err != nil {
		return nil, usageError("--notify-on: %v", err)
	}
	var out []notify.Target
	for i, a := range n.addresses {
		t, err := notify.Parse(a)
		if err != nil {
			return nil, usageError("--notify (target %d): %v", i+1, err)
		}
		if err := n.sender.Check(t); err != nil {
			return nil, usageError("--notify: %v", err)
		}
		t.Events, t.IncludeRows = events, n.includeRows
		out = append(out, t)
	}
	return out, nil
}

// apply makes the lifecycle's process a sender of notifications.
func (n *notifySettings) apply(cfg *jobs.Config) error {
	if n.dashboard != "" && !strings.HasPrefix(n.dashboard, "http://") && !strings.HasPrefix(n.dashboard, "https://") {
		return usageError("--dashboard-url %q: use an http:// or https:// address", n.dashboard)
	}
	cfg.Sender, cfg.DashboardURL = n.sender, n.dashboard
	return nil
}

// saveTargets keeps the targets' addresses in Redis, where every worker
// finds them by id, and returns how imports name them.
func saveTargets(ctx context.Context, st *store.Store, targets []notify.Target) ([]importer.NotifyTarget, error) {
	refs := make([]importer.NotifyTarget, 0, len(targets))
	for _, t := range targets {
		if err := st.SaveNotifyTarget(ctx, t.ID(), t.Address()); err != nil {
			return nil, err
		}
		refs = append(refs, t.Ref())
	}
	return refs, nil
}

// scheduleTargets parses a schedule entry's notify block.
func scheduleTargets(e schedule.Periodic) ([]notify.Target, error) {
	var out []notify.Target
	for i, spec := range e.Notify {
		t, err := notify.Parse(spec.Address)
		if err != nil {
			return nil, usageError("%s: notify %d: %v", e.Where, i+1, err)
		}
		t.Events, t.IncludeRows = spec.Events, spec.IncludeRows
		out = append(out, t)
	}
	return out, nil
}
