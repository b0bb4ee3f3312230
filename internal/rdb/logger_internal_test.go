package rdb

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// While Redis is down, Asynq's parts say so several times a second: the
// first line is told, the rest of the stream is not, and the next line
// after a quiet spell says how many were held back (issue 22).
func TestAStreamOfAsynqErrorsIsToldOnce(t *testing.T) {
	defer func(g *troubleGate, q time.Duration) { asynqTrouble, quietAfterTrouble = g, q }(asynqTrouble, quietAfterTrouble)
	asynqTrouble = &troubleGate{}
	var buf bytes.Buffer
	l := Logger{L: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 76 {
		l.Error("Failed to dequeue tasks: dial tcp 127.0.0.1:6379: connect: connection refused")
		l.Warn("Failed to write server state data")
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines while Redis is down, want 1:\n%s", n, buf.String())
	}
	l.Info("send server state") // below warnings: never held back
	quietAfterTrouble = 0       // the stream has stopped
	l.Error("Failed to forward scheduled tasks")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "suppressed_before=151") {
		t.Errorf("after the stream:\n%s", buf.String())
	}
}
