package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/propexo-importer/importer/internal/rdb"
)

// Exit codes, as the README says them ("Exit codes of run").
const (
	exitOK          = 0
	exitSomeFailed  = 1
	exitUsage       = 2
	exitUnfinished  = 3
	exitInterrupted = 130
)

// exitError carries the exit code a command ends with. Its message, when
// not empty, is printed as the one line the user reads.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func unfinished(err error) error { return &exitError{code: exitUnfinished, err: err} }

// env is how commands read the environment: os.Getenv, or a map in tests.
type env func(string) string

// Main runs the importer with its arguments and returns the exit code. main
// calls it; the end-to-end tests call it too.
func Main(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) int {
	started := false
	root := newRoot(getenv, stdout, stderr, &started)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var exit *exitError
	if !errors.As(err, &exit) {
		code := exitUsage
		if started {
			code = exitUnfinished
		}
		exit = &exitError{code: code, err: err}
	}
	if ctx.Err() != nil && exit.code == exitUnfinished {
		exit.code = exitInterrupted
	}
	if msg := exit.Error(); msg != "" {
		fmt.Fprintln(stderr, "importer: "+msg)
		if exit.code == exitUsage && !started {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return exit.code
}

// globals are the flags every subcommand has.
type globals struct {
	logLevel  string
	logFormat string
}

func newRoot(getenv env, stdout, stderr io.Writer, started *bool) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "importer",
		Short: "Import residents in bulk through the Propexo write API, one queued task per resident",
		Long: `importer turns a CSV, JSON, NDJSON or Excel file of residents into one Asynq task per
resident. It matches each row with the residents Propexo lists (a sync: the
default --mode upsert), and workers send only what is not in place — a
create, or an update of the fields that changed — to the Propexo write API,
follow each write's asynchronous job with delayed status checks, and write a
report when every row has an outcome.

Start here:
  importer run samples/residents.csv

With nothing configured, run uses an in-process Redis, in-process workers and
the in-process sandbox. Set REDIS_URL to use a real Redis (and 'importer
worker' on as many machines as you like), PROPEXO_API_KEY to talk to the API.

A flag that shows an environment variable in [brackets] takes its default
from it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseLogLevel(g.logLevel); err != nil {
				return usageError("%v", err)
			}
			if g.logFormat != "text" && g.logFormat != "json" {
				return usageError("--log-format %q: use text or json", g.logFormat)
			}
			redis.SetLogger(rdb.RedisLogger{L: g.logger(stderr)})
			*started = true
			return nil
		},
	}
	root.Version = version()
	root.SetVersionTemplate("importer {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError("%v", err)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", envOr(getenv, "IMPORTER_LOG_LEVEL", "info"), "log level: debug, info, warn or error "+envTag("IMPORTER_LOG_LEVEL"))
	pf.StringVar(&g.logFormat, "log-format", envOr(getenv, "IMPORTER_LOG_FORMAT", "text"), "log format: text or json "+envTag("IMPORTER_LOG_FORMAT"))

	root.AddCommand(newRunCommand(getenv, g, stdout, stderr))
	root.AddCommand(newPlanCommand(getenv, g, stdout, stderr))
	root.AddCommand(newWorkerCommand(getenv, g, stderr))
	root.AddCommand(newSandboxCommand(getenv, g, stderr))
	root.AddCommand(newWebhooksCommand(getenv, g, stdout, stderr))
	root.AddCommand(newRetryCommand(getenv, g, stdout, stderr))
	root.AddCommand(newStatusCommand(getenv, stdout))
	root.AddCommand(newReportCommand(getenv, stdout))
	root.AddCommand(newCancelCommand(getenv, stdout))
	root.AddCommand(newApproveCommand(getenv, stdout))
	root.AddCommand(newDeleteCommand(getenv, stdout))
	root.AddCommand(newPruneCommand(getenv, stdout))
	root.AddCommand(newVersionCommand(stdout))
	root.AddCommand(newDashboardCommand(getenv, g, stdout, stderr))
	root.AddCommand(newScheduleCommand(getenv, g, stdout, stderr))
	root.AddCommand(newMappingCommand(stdout))
	return root
}

// exactlyOne is the positional-argument check of a command that takes one
// argument, named what.
func exactlyOne(command, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError("%s takes one %s, got %d arguments", command, what, len(args))
		}
		return nil
	}
}

// atLeastOne is the positional-argument check of a command that takes one
// argument or more, named what.
func atLeastOne(command, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError("%s takes a %s", command, what)
		}
		return nil
	}
}

// waitingLogger is the logger of a command that shows progress while
// in-process workers run: their routine logs would drown it, so it logs
// warnings and errors unless a level was asked for.
func (g *globals) waitingLogger(cmd *cobra.Command, getenv env, w io.Writer) *slog.Logger {
	if !cmd.Flags().Changed("log-level") && getenv("IMPORTER_LOG_LEVEL") == "" {
		return g.loggerAt(w, slog.LevelWarn)
	}
	return g.logger(w)
}

// envDuration reads a duration from the environment, for a flag default.
func envDuration(getenv env, name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(getenv(name)); err == nil {
		return d
	}
	return def
}

func envTag(name string) string { return "[$" + name + "]" }

// urlFlag registers a URL flag whose default comes from the environment;
// --help shows that default with its user name and password hidden.
func urlFlag(fs *pflag.FlagSet, p *string, name, def, usage string) {
	fs.StringVar(p, name, def, usage)
	if def != "" {
		fs.Lookup(name).DefValue = rdb.Redact(def)
	}
}

// splitList reads a comma-separated list from the environment, for a flag
// default.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func envOr(getenv env, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

func parseLogLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", s)
	}
	return l, nil
}

func (g *globals) logger(w io.Writer) *slog.Logger {
	level, _ := parseLogLevel(g.logLevel)
	return g.loggerAt(w, level)
}

func (g *globals) loggerAt(w io.Writer, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// apiSettings are the flags that say how to reach the write API.
type apiSettings struct {
	url     string
	timeout time.Duration
	keyFile string
	key     string // from PROPEXO_API_KEY only: a flag would show in ps
	// checked: this command has checked the API already (probeAPI), so
	// its later clients need not ask again.
	checked bool
}

func (a *apiSettings) register(fs *pflag.FlagSet, getenv env) {
	urlFlag(fs, &a.url, "api-url", getenv("PROPEXO_API_URL"), "base URL of the write API, e.g. https://api.sandbox.propexo.com "+envTag("PROPEXO_API_URL"))
	fs.DurationVar(&a.timeout, "api-timeout", 30*time.Second, "longest wait for one answer of the API; a create whose answer does not come in time is looked up, never resent blindly")
	fs.StringVar(&a.keyFile, "api-key-file", getenv("PROPEXO_API_KEY_FILE"), "file holding the API key; the key itself is read from $PROPEXO_API_KEY "+envTag("PROPEXO_API_KEY_FILE"))
	a.key = getenv("PROPEXO_API_KEY")
}

// endpoint returns the API's URL (production when only a key is set) and
// the key, or a usage error when the key is missing.
func (a *apiSettings) endpoint() (url, key string, err error) {
	url = a.url
	if url == "" {
		url = defaultAPIURL
	}
	if a.key == "" {
		return "", "", usageError("PROPEXO_API_KEY is not set: the API at %s needs a key (or use --api-key-file)", rdb.Redact(url))
	}
	return url, a.key, nil
}

// resolveKey reads the key file when one is given.
func (a *apiSettings) resolveKey() error {
	if a.keyFile == "" {
		return nil
	}
	b, err := os.ReadFile(a.keyFile)
	if err != nil {
		return usageError("--api-key-file: cannot read %s: %v", a.keyFile, errors.Unwrap(err))
	}
	a.key = strings.TrimSpace(string(b))
	if a.key == "" {
		return usageError("--api-key-file: %s is empty", a.keyFile)
	}
	return nil
}
