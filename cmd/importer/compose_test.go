package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
)

// The compose file parses with the Compose loader, every service that runs
// the importer runs a real subcommand with real flags, and every service has
// a health check.
func TestComposeFile(t *testing.T) {
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
