package fetch_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/fetchtest"
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

// An object in a Google Cloud Storage bucket (fake-gcs-server) or an Azure
// container (Azurite) is read as an S3 one is, through the same API.
func TestGSAndAzureReadAnObject(t *testing.T) {
	roster := "First Name,Last Name\nAda,Lovelace\n"
	ctx := context.Background()
	gcs := fetchtest.StartGCS(t, "exports")
	gcs.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "exports", Name: "nightly/roster.csv"}, Content: []byte(roster)})
	r, err := fetch.Open(ctx, "gs://exports/nightly/roster.csv", fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	readWhole(t, r, roster)
	if _, err := fetch.Open(ctx, "gs://exports/nightly/missing.csv", fetch.Options{}); err == nil || err.Error() != "cannot read gs://exports/nightly/missing.csv: the bucket holds no such object" {
		t.Errorf("a missing object: %v", err)
	}

	az := fetchtest.StartAzurite(t)
	t.Setenv("AZURE_STORAGE_ACCOUNT", fetchtest.AzuriteAccount)
	t.Setenv("AZURE_STORAGE_KEY", fetchtest.AzuriteKey)
	cred, _ := azblob.NewSharedKeyCredential(fetchtest.AzuriteAccount, fetchtest.AzuriteKey)
	client, err := azblob.NewClientWithSharedKeyCredential(az.ServiceURL, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateContainer(ctx, "exports", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UploadBuffer(ctx, "exports", "nightly/roster.csv", []byte(roster), nil); err != nil {
		t.Fatal(err)
	}
	r, err = fetch.Open(ctx, "azblob://exports/nightly/roster.csv?protocol=http&localemu=true&domain="+az.Addr, fetch.Options{})
	if err != nil {
		t.Fatal(err)
	}
	readWhole(t, r, roster)
}
