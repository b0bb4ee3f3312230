package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/propexo-importer/importer/internal/rdb"
)

// The compose file parses with the Compose loader, every service that runs
// the importer runs a real subcommand with real flags, and every service has
// a health check.
func TestComposeFile(t *testing.T) {
	t.Parallel()
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"}, cli.WithWorkingDirectory("../.."), cli.WithName("resident-importer"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	want := map[string]bool{"redis": false, "sandbox": false, "webhooks": false, "worker": false, "scheduler": false, "dashboard": false}
	for name, svc := range project.Services {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected service %s", name)
		}
		want[name] = true
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
		if svc.Image != "resident-importer:dev" {
			continue
		}
		args := []string(svc.Command)
		root := newRoot(func(string) string { return "" }, io.Discard, io.Discard, new(bool))
		cmd, rest, err := root.Find(args)
		if err != nil || cmd == root {
			t.Errorf("service %s runs %q: not a subcommand (%v)", name, args, err)
			continue
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Errorf("service %s runs %q: %v", name, strings.Join(args, " "), err)
		}
		if cmd.Flags().NArg() > 0 && cmd.Args != nil {
			if err := cmd.Args(cmd, cmd.Flags().Args()); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("service %s is missing", name)
		}
	}
	if w := project.Services["worker"]; w.Deploy == nil || w.Deploy.Replicas == nil || *w.Deploy.Replicas != 2 {
		t.Error("the compose file does not run two workers")
	}
	shared := 0
	for _, name := range []string{"worker", "dashboard"} {
		for _, v := range project.Services[name].Volumes {
			if v.Source == "reports" {
				shared++
			}
		}
	}
	if shared != 2 {
		t.Error("the workers and the dashboard do not share the reports volume")
	}
	if cmd := project.Services["redis"].Command; !strings.Contains(strings.Join(cmd, " "), "--appendonly yes") {
		t.Errorf("Redis runs without persistence: %v", cmd)
	}
}

// The sentinel profile adds a replica and three Sentinels that monitor the
// primary under the master name the README's REDIS_URL names, and the
// importer's services take that URL from IMPORTER_REDIS_URL.
func TestComposeSentinelProfile(t *testing.T) {
	t.Parallel()
	sentinelURL := "redis-sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379?master=importer"
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"}, cli.WithWorkingDirectory("../.."), cli.WithName("resident-importer"),
		cli.WithProfiles([]string{"sentinel"}), cli.WithEnv([]string{"IMPORTER_REDIS_URL=" + sentinelURL}))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml with the sentinel profile does not load: %v", err)
	}
	replica, ok := project.Services["redis-replica"]
	if !ok || !strings.Contains(strings.Join(replica.Command, " "), "--replicaof redis 6379") {
		t.Errorf("no replica of redis in the sentinel profile: %v", replica.Command)
	}
	for _, name := range []string{"sentinel-1", "sentinel-2", "sentinel-3"} {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		if cmd := strings.Join(svc.Command, " "); !strings.Contains(cmd, "sentinel monitor importer redis 6379 2") || !strings.Contains(cmd, "--sentinel") {
			t.Errorf("%s does not monitor the primary as importer: %s", name, cmd)
		}
		if svc.HealthCheck == nil {
			t.Errorf("%s has no health check", name)
		}
	}
	for _, name := range []string{"worker", "scheduler", "dashboard", "webhooks"} {
		if got := project.Services[name].Environment["REDIS_URL"]; got == nil || *got != sentinelURL {
			t.Errorf("%s's REDIS_URL = %v, want the Sentinels'", name, got)
		}
	}
	if _, err := rdb.ParseURL(sentinelURL); err != nil {
		t.Errorf("the README's Sentinel URL does not parse: %v", err)
	}
}
