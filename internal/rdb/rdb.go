// Package rdb connects the importer to Redis (asynq calls its own package
// the same): it turns a Redis
// URL into clients (or starts an in-process Redis when there is none), and
// adapts log/slog to Asynq's logger.
package rdb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// ErrBadURL is wrapped by Connect's error for a URL that is not a Redis URL.
var ErrBadURL = errors.New("not a Redis URL")

// Redis is a connection to the Redis that holds the queue and the imports.
type Redis struct {
	// Opt is the connection option Asynq's client, server and inspector
	// take.
	Opt asynq.RedisConnOpt
	// Client is a go-redis client on the same server.
	Client redis.UniversalClient
	// Addr names the server for messages, without credentials.
	Addr string
	// Embedded is true when the server runs inside this process.
	Embedded bool

	mini *miniredis.Miniredis
}

// Connect connects to the Redis at url and checks that it answers. An empty
// url starts an in-process Redis (miniredis) that lives as long as the
// process.
func Connect(ctx context.Context, redisURL string) (*Redis, error) {
	r := &Redis{}
	if redisURL == "" {
		m := miniredis.NewMiniRedis()
		m.ClockTTL(true)
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("error starting the in-process Redis: %w", err)
		}
		r.mini, r.Embedded, r.Addr = m, true, m.Addr()
		redisURL = "redis://" + m.Addr()
	}
	opt, err := ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %q is %w (use redis://host:port/db, rediss://, redis-sentinel://s1,s2?master=name or redis-cluster://n1,n2,n3): %v", Redact(redisURL), ErrBadURL, err)
	}
	if r.Addr == "" {
		r.Addr = Redact(redisURL)
	}
	client, ok := opt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, fmt.Errorf("REDIS_URL %q: unsupported connection type", r.Addr)
	}
	r.Opt, r.Client = opt, client
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("cannot reach Redis at %s: %v", r.Addr, err)
	}
	return r, nil
}

// ParseURL turns a Redis URL into Asynq's connection option. Asynq reads
// redis://, rediss://, redis-socket:// and redis-sentinel://; a cluster is
// named as redis-cluster://[user:password@]host1:port,host2:port,... (or
// rediss-cluster:// for TLS), any of its nodes being enough to find the
// others.
func ParseURL(raw string) (asynq.RedisConnOpt, error) {
	scheme, _, _ := strings.Cut(raw, "://")
	if scheme != "redis-cluster" && scheme != "rediss-cluster" {
		return asynq.ParseRedisURI(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, errors.New("a cluster URL names at least one node")
	}
	opt := asynq.RedisClusterClientOpt{Addrs: strings.Split(u.Host, ",")}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	if scheme == "rediss-cluster" {
		host, _, err := net.SplitHostPort(opt.Addrs[0])
		if err != nil {
			host = opt.Addrs[0]
		}
		opt.TLSConfig = &tls.Config{ServerName: host}
	}
	return opt, nil
}

// Close closes the client and stops an in-process server.
func (r *Redis) Close() error {
	err := r.Client.Close()
	if r.mini != nil {
		r.mini.Close()
	}
	return err
}

// Redact hides a URL's user name and password, for messages.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	return u.String()
}

// RedisLogger adapts a *slog.Logger to go-redis's logger, at debug level:
// the connection pool's own lines ("failed to dial after 5 attempts") are
// detail, and the importer says what went wrong in one sentence of its own.
type RedisLogger struct{ L *slog.Logger }

// Printf logs one line of go-redis at debug level.
func (l RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.L.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}

// Logger adapts a *slog.Logger to asynq.Logger.
type Logger struct{ L *slog.Logger }

var _ asynq.Logger = Logger{}

func (l Logger) log(level slog.Level, args []any) {
	msg := strings.TrimSpace(fmt.Sprintln(args...))
	if level < slog.LevelWarn {
		l.L.Log(context.Background(), level, msg, "component", "asynq")
		return
	}
	// While Redis is out of reach every part of Asynq says so, several
	// times a second: one line, then quiet until the errors stop.
	pass, suppressed := asynqTrouble.pass(time.Now())
	if !pass {
		return
	}
	attrs := []any{"component", "asynq"}
	if suppressed > 0 {
		attrs = append(attrs, "suppressed_before", suppressed)
	}
	l.L.Log(context.Background(), level, msg, attrs...)
}

// quietAfterTrouble is how long after Asynq's last warning or error the
// next one is suppressed: a stream of them is told once.
var quietAfterTrouble = 30 * time.Second

// asynqTrouble is the process's gate for Asynq's warnings and errors.
var asynqTrouble = &troubleGate{}

// troubleGate lets the first of a stream of lines through, and the next
// only once the stream has stopped for quietAfterTrouble, counting what it
// held back.
type troubleGate struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (g *troubleGate) pass(now time.Time) (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	inStream := !g.last.IsZero() && now.Sub(g.last) < quietAfterTrouble
	g.last = now
	if inStream {
		g.suppressed++
		return false, 0
	}
	n := g.suppressed
	g.suppressed = 0
	return true, n
}

// Debug logs at debug level.
func (l Logger) Debug(args ...any) { l.log(slog.LevelDebug, args) }

// Info logs at info level.
func (l Logger) Info(args ...any) { l.log(slog.LevelInfo, args) }

// Warn logs at warn level.
func (l Logger) Warn(args ...any) { l.log(slog.LevelWarn, args) }

// Error logs at error level.
func (l Logger) Error(args ...any) { l.log(slog.LevelError, args) }

// Fatal logs at error level and exits, as asynq.Logger requires.
func (l Logger) Fatal(args ...any) {
	l.log(slog.LevelError, args)
	os.Exit(1)
}
