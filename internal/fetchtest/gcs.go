package fetchtest

import (
	"io"
	"net"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// StartGCS starts fake-gcs-server in process, over HTTP on a loopback
// port, and points Google's storage client at it (STORAGE_EMULATOR_HOST,
// as for any emulator): gs:// addresses then reach it, signed in as no one.
func StartGCS(t *testing.T, buckets ...string) *fakestorage.Server {
	t.Helper()
	// Google's client reads objects by the XML API, which the fake serves
	// only on its "public host": its own address, so its port is chosen
	// first.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: uint16(addr.Port), PublicHost: addr.String(), Writer: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	t.Setenv("STORAGE_EMULATOR_HOST", addr.String())
	return srv
}
