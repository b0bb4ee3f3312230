package main

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/redistest"
)

// After an import with webhooks, at debug level, neither the API key, nor
// the webhook secret, nor a password in the API's or Redis's URL is
// anywhere: logs, output, reports, any key of Redis (task payloads
// included), --help.
func TestSecretsStaySecret(t *testing.T) {
	t.Parallel()
	const apiKey, hookSecret, urlPassword, redisPassword = "sk_live_4f9Qz7SECRETKEY", "whsec_8Hn2SECRETHOOK", "urlpa55SECRETINURL", "redisSECRETPASS"
	dir := t.TempDir()
	conn := redistest.Client(t)
	apiAddr, hookAddr := freeAddr(t), freeAddr(t)
	sbLog := background(t, dir, map[string]string{"PROPEXO_API_KEY": apiKey, "PROPEXO_WEBHOOK_SECRET": hookSecret, "IMPORTER_LOG_LEVEL": "debug"},
		"sandbox", "--addr", apiAddr, "--latency", "fixed:300ms", "--rate-limit", "6000", "--webhook-url", "http://"+hookAddr+"/webhooks/propexo")
	redisURL := redistest.URL(t)
	apiURL := "http://importer:" + urlPassword + "@" + apiAddr
	env := map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": apiURL, "PROPEXO_API_KEY": apiKey,
		"PROPEXO_WEBHOOK_SECRET": hookSecret, "IMPORTER_LOG_LEVEL": "debug"}
	waitForHTTP(t, "http://"+apiAddr+"/healthz")
	workerLog := background(t, dir, env, "worker", "--webhooks-addr", hookAddr, "--rate-limit", "6000", "--poll-fallback", "1m")
	waitForHTTP(t, "http://"+hookAddr+"/healthz")
	run := runImporter(t, dir, env, "run", "--workers", "0", sample(t, "residents-with-errors.csv"))
	if run.code != 1 {
		t.Fatalf("run: %d\n%s\n%s", run.code, run.stdout, run.stderr)
	}
	// A request with a wrong key, and a forged webhook, for their error paths.
	bad := runImporter(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": apiURL, "PROPEXO_API_KEY": apiKey + "x"}, "worker")
	// An API that is not there, and a Redis that refuses the password.
	gone := runImporter(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "http://importer:" + urlPassword + "@" + freeAddr(t), "PROPEXO_API_KEY": apiKey}, "run", sample(t, "residents.csv"))
	wrongRedis := runImporter(t, dir, map[string]string{"REDIS_URL": "redis://default:" + redisPassword + "@" + strings.TrimPrefix(redisURL, "redis://")}, "status")
	badURL := runImporter(t, dir, map[string]string{"REDIS_URL": redisURL, "PROPEXO_API_URL": "ftp://importer:" + urlPassword + "@example.com", "PROPEXO_API_KEY": apiKey}, "worker")

	places := map[string]string{
		"run output":     run.stdout + run.stderr,
		"worker logs":    workerLog.String(),
		"sandbox logs":   sbLog.String(),
		"error messages": bad.stdout + bad.stderr + gone.stdout + gone.stderr + wrongRedis.stdout + wrongRedis.stderr + badURL.stdout + badURL.stderr,
	}
	if !strings.Contains(gone.stderr, "cannot reach the API at http://redacted@") || !strings.Contains(badURL.stderr, "ftp://redacted@example.com") {
		t.Errorf("the errors do not name the URLs they are about:\n%s\n%s", gone.stderr, badURL.stderr)
	}
	helpEnv := map[string]string{"REDIS_URL": "redis://default:" + redisPassword + "@127.0.0.1:1/0", "PROPEXO_API_URL": apiURL, "PROPEXO_API_KEY": apiKey, "PROPEXO_WEBHOOK_SECRET": hookSecret}
	for _, cmd := range []string{"run", "worker", "sandbox", "webhooks", "retry", "status", "report", "cancel", "dashboard", "schedule"} {
		h := runImporter(t, dir, helpEnv, cmd, "--help")
		places["--help of "+cmd] = h.stdout + h.stderr
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			places[path] = string(b)
		}
		return nil
	})
	ctx := context.Background()
	keys, err := conn.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("Redis keys: %v %v", keys, err)
	}
	for _, k := range keys {
		var v strings.Builder
		switch conn.Type(ctx, k).Val() {
		case "string":
			v.WriteString(conn.Get(ctx, k).Val())
		case "hash":
			for f, x := range conn.HGetAll(ctx, k).Val() {
				v.WriteString(f + x)
			}
		case "list":
			v.WriteString(strings.Join(conn.LRange(ctx, k, 0, -1).Val(), ""))
		case "set":
			v.WriteString(strings.Join(conn.SMembers(ctx, k).Val(), ""))
		case "zset":
			v.WriteString(strings.Join(conn.ZRange(ctx, k, 0, -1).Val(), ""))
		}
		places["redis "+k] = v.String()
	}
	if !strings.Contains(places["worker logs"], "level=DEBUG") {
		t.Error("the worker did not log at debug level: the test proves less than it says")
	}
	for where, text := range places {
		for _, secret := range []string{apiKey, hookSecret, urlPassword, redisPassword} {
			if strings.Contains(text, secret) {
				t.Errorf("a secret shows in %s", where)
			}
		}
	}
	t.Logf("searched %d places (%d Redis keys)", len(places), len(keys))
}

// The dashboard, the webhook receiver and the sandbox listen on loopback
// unless told otherwise.
func TestServersBindToLoopbackByDefault(t *testing.T) {
	t.Parallel()
	root := newRoot(func(string) string { return "" }, io.Discard, io.Discard, new(bool))
	for cmd, flag := range map[string]string{"dashboard": "addr", "webhooks": "addr", "sandbox": "addr"} {
		c, _, err := root.Find([]string{cmd})
		if err != nil {
			t.Fatal(err)
		}
		if def := c.Flags().Lookup(flag).DefValue; !strings.HasPrefix(def, "127.0.0.1:") {
			t.Errorf("%s --%s defaults to %q, not loopback", cmd, flag, def)
		}
	}
}
