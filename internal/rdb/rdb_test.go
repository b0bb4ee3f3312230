package rdb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/propexo-importer/importer/internal/rdb"
	"github.com/propexo-importer/importer/internal/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestConnectToARealRedis(t *testing.T) {
	r, err := rdb.Connect(context.Background(), redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Embedded {
		t.Error("a Redis URL gave the in-process Redis")
	}
	if err := r.Client.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Error(err)
	}
}

func TestConnectWithoutURLStartsAnInProcessRedis(t *testing.T) {
	r, err := rdb.Connect(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if !r.Embedded || !strings.HasPrefix(r.Addr, "127.0.0.1:") {
		t.Errorf("Embedded %v at %q", r.Embedded, r.Addr)
	}
	if err := r.Client.Ping(context.Background()).Err(); err != nil {
		t.Error(err)
	}
}

func TestConnectErrorsNameTheAddressNotThePassword(t *testing.T) {
	_, err := rdb.Connect(context.Background(), "redis://user:s3cret@127.0.0.1:1/0")
	if err == nil || !strings.Contains(err.Error(), "cannot reach Redis at redis://redacted@127.0.0.1:1/0") || strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "user:") {
		t.Errorf("error = %v", err)
	}
	_, err = rdb.Connect(context.Background(), "http://nope")
	if err == nil || !strings.Contains(err.Error(), "is not a Redis URL") {
		t.Errorf("error = %v", err)
	}
}
