package fetch_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/propexo-importer/importer/internal/fetch"
)

// An object in an S3-compatible store (gofakes3, in process, over HTTP) is
// read with the AWS SDK's credentials from the environment; the address's
// query configures the endpoint, and is never shown.
func TestS3ReadsAnObject(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "AWSSECRET")
	t.Setenv("AWS_REGION", "us-east-1")
	store := s3mem.New()
	if err := store.CreateBucket("exports"); err != nil {
		t.Fatal(err)
	}
	roster := "First Name,Last Name\nAda,Lovelace\n"
	if _, err := store.PutObject("exports", "nightly/roster.csv", map[string]string{}, strings.NewReader(roster), int64(len(roster)), nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(store).Server())
	t.Cleanup(srv.Close)
	query := "?endpoint=" + srv.URL + "&use_path_style=true&disable_https=true"
	ctx := context.Background()

	r, err := fetch.Open(ctx, "s3://exports/nightly/roster.csv"+query, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	readWhole(t, r, roster)

	_, err = fetch.Open(ctx, "s3://exports/nightly/missing.csv"+query, fetch.Options{})
	if err == nil || err.Error() != "cannot read s3://exports/nightly/missing.csv: the bucket holds no such object" {
		t.Errorf("a missing object: %v", err)
	}
	_, err = fetch.Open(ctx, "s3://exports"+query, fetch.Options{})
	if err == nil || !strings.Contains(err.Error(), "name the object after the bucket") {
		t.Errorf("no object: %v", err)
	}
}
