package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/propexo-importer/importer/internal/sandbox"
)

type sandboxConfig struct {
	addr        string
	apiKey      apiSettings
	latency     string
	failureRate float64
	partialRate float64
	seed        uint64
}

func newSandboxCommand(getenv env, g *globals, stderr io.Writer) *cobra.Command {
	c := &sandboxConfig{}
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Serve a local stand-in for the Propexo write API",
		Long: `sandbox serves a local server that behaves like the Propexo write API: both
create paths with each vendor's rules, 400 and 405 error bodies, writes that
stay PENDING for a while and then succeed or fail, reading and listing
residents, retrying failed writes, and 401 without the right bearer token.
Clients must send the key in PROPEXO_API_KEY (or --api-key-file).

Integrations: int_rentmanager_demo (rentmanager; properties prop_100,
prop_200, prop_300), int_propertyware_demo (propertyware_rest),
int_buildium_demo and int_yardi_demo (cannot create: 405).
GET /_sandbox/stats shows what it saw (requests, creates, duplicates).`,
		Example: `  PROPEXO_API_KEY=dev-key importer sandbox --addr 127.0.0.1:8080 --latency uniform:1s-5s --failure-rate 0.05`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.run(cmd.Context(), g.logger(stderr))
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.addr, "addr", envOr(getenv, "SANDBOX_ADDR", "127.0.0.1:8080"), "address to listen on "+envTag("SANDBOX_ADDR"))
	f.StringVar(&c.apiKey.keyFile, "api-key-file", getenv("PROPEXO_API_KEY_FILE"), "file holding the key clients must send; the key itself is read from $PROPEXO_API_KEY "+envTag("PROPEXO_API_KEY_FILE"))
	c.apiKey.key = getenv("PROPEXO_API_KEY")
	f.StringVar(&c.latency, "latency", envOr(getenv, "SANDBOX_LATENCY", sandbox.DefaultLatency), "how long writes stay PENDING: fixed:2s, uniform:1s-5s or lognormal:median=2s,p99=30s "+envTag("SANDBOX_LATENCY"))
	f.Float64Var(&c.failureRate, "failure-rate", 0, "share of writes (0-1) that end in FAILURE")
	f.Float64Var(&c.partialRate, "partial-rate", 0, "share of writes (0-1) that end in PARTIAL_SUCCESS")
	f.Uint64Var(&c.seed, "seed", 1, "seed of the random choices, so a run can be repeated")
	return cmd
}

func (c *sandboxConfig) run(ctx context.Context, log *slog.Logger) error {
	if err := c.apiKey.resolveKey(); err != nil {
		return err
	}
	if c.apiKey.key == "" {
		return usageError("set PROPEXO_API_KEY (or --api-key-file) to the key clients must send")
	}
	latency, err := sandbox.ParseLatency(c.latency)
	if err != nil {
		return usageError("--latency: %v", err)
	}
	if c.failureRate < 0 || c.failureRate > 1 || c.partialRate < 0 || c.partialRate > 1 || c.failureRate+c.partialRate > 1 {
		return usageError("--failure-rate %v and --partial-rate %v: use shares from 0 to 1 that add up to at most 1", c.failureRate, c.partialRate)
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return usageError("--addr %s: %v", c.addr, err)
	}
	sb := sandbox.New(sandbox.Config{APIKey: c.apiKey.key, Latency: latency, FailureRate: c.failureRate, PartialRate: c.partialRate, Seed: c.seed})
	srv := &http.Server{Handler: sb.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("sandbox listening", "url", "http://"+ln.Addr().String(), "latency", latency.String(), "failure_rate", c.failureRate, "partial_rate", c.partialRate)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return unfinished(err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return unfinished(err)
	}
	log.Info("sandbox stopped")
	return nil
}
