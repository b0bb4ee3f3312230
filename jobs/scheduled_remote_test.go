package jobs_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/propexo-importer/importer/importer"
	"github.com/propexo-importer/importer/internal/fetch"
	"github.com/propexo-importer/importer/internal/fetchtest"
	"github.com/propexo-importer/importer/jobs"
)

// rosterCSV is a roster of n residents, the first numbered from.
func rosterCSV(from, n int) string {
	var b strings.Builder
	b.WriteString("First Name,Last Name,E-mail\n")
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "Resident,Number%d,r%d@example.com\n", i, i)
	}
	return b.String()
}

// remoteInbox is a schedule's inbox on a server the test started, seen
// by the test through the server's own storage (not through fetch).
type remoteInbox struct {
	*env
	s       jobs.ScheduledImport
	sources fetch.Options
	put     func(name, content string)
	// files lists a folder of the inbox ("" the inbox itself): name and
	// content.
	files func(folder string) map[string]string
}

// replicas are two workers' lifecycles on one Redis and queue, as two
// replicas of a deployment, each firing the schedule at the same moment.
func (in *remoteInbox) fireTwice(t *testing.T) {
	t.Helper()
	task, _, err := jobs.NewScheduledImportTask(in.s)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		h := jobs.NewImports(in.api, in.store, in.queue, in.reports, nil, jobs.Config{PollInitial: time.Second, Sources: in.sources})
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.ProcessTask(context.Background(), task)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A remote inbox keeps a local one's promises: two replicas firing at once
// claim each file once; a file waits for its ready marker; a broken file
// is filed in failed/ with a note saying why; an imported one in done/;
// a copy of imported content sends nothing and is filed with a note.
func testRemoteInbox(t *testing.T, in *remoteInbox) {
	ctx := context.Background()
	in.s.ReadyMarker = ".ok"
	in.put("roster.csv", rosterCSV(1, 4))
	in.put("roster.csv.ok", "")
	in.put("broken.csv", "First Name,Last Name\n") // a header, no residents
	in.put("broken.csv.ok", "")
	in.put("later.csv", rosterCSV(10, 2)) // no marker yet
	in.put("notes.txt", "not the inbox's")

	in.fireTwice(t)
	ids := in.imports(t)
	if len(ids) != 1 {
		t.Fatalf("imports %v after two replicas fired, want the roster's one", ids)
	}
	failed := in.files(jobs.FailedDir)
	if _, ok := failed["broken.csv"]; !ok || !strings.Contains(failed["broken.csv.error.txt"], "broken.csv") {
		t.Errorf("failed/ holds %v, want the broken file with a note saying why", keys(failed))
	}
	if inbox := keys(in.files("")); !slices.Equal(inbox, []string{"later.csv", "notes.txt"}) {
		t.Errorf("the inbox holds %v, want only the file without its marker and the file no pattern matches", inbox)
	}

	// The same content again, under another name, while its import runs:
	// filed with a note.
	in.put("copy.csv", rosterCSV(1, 4))
	in.put("copy.csv.ok", "")
	in.fireTwice(t)
	if ids := in.imports(t); len(ids) != 1 {
		t.Errorf("imports %v: a copy was imported again", ids)
	}
	if note := in.files(jobs.DoneDir)["copy.csv.note.txt"]; !strings.Contains(note, "the same content as import "+ids[0]) {
		t.Errorf("the copy's note says %q", note)
	}

	serve(t, in.rdb, jobs.NewImports(in.api, in.store, in.queue, in.reports, nil, jobs.Config{PollInitial: time.Second, Sources: in.sources}), 1, 10)
	waitFinished(t, in.store, ids[0], 20*time.Second)
	p, _ := in.store.Progress(ctx, ids[0])
	if p.Total != 4 || p.Counts[importer.Succeeded] != 4 {
		t.Errorf("progress %+v, want the roster's 4 residents created", p)
	}
	var done map[string]string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// (A bucket's move copies, then deletes: both seen done.)
		if done = in.files(jobs.DoneDir); len(done) > 2 && len(in.files(jobs.ProcessingDir)) == 0 {
			break
		}
	}
	if !slices.Equal(keys(done), []string{"copy.csv", "copy.csv.note.txt", "roster.csv"}) || done["roster.csv"] != rosterCSV(1, 4) {
		t.Errorf("done/ holds %v, want the imported roster, and its copy with a note (a file claimed twice would be there twice)", keys(done))
	}
	if processing := in.files(jobs.ProcessingDir); len(processing) != 0 {
		t.Errorf("processing/ holds %v once the import ended, want nothing (its claim record gone too)", keys(processing))
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// An inbox on an SFTP server (pkg/sftp's, behind an SSH server the test
// starts), signed in to with a key, the server's key checked.
func TestScheduledSFTPInbox(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	drop := filepath.Join(dir, "drop")
	os.MkdirAll(drop, 0o700)
	srv := fetchtest.StartSFTP(t, dir)
	in := &remoteInbox{env: newEnv(t, "fixed:0s", nil),
		sources: fetch.Options{SSH: fetch.SSHOptions{KeyFiles: []string{srv.KeyFile}, KnownHosts: []string{srv.KnownHosts(t, srv.HostKey)}}}}
	in.s = jobs.ScheduledImport{Name: "sftp", Inbox: "sftp://pms@" + srv.Addr + drop + "/*.csv"}
	in.s.Options.IntegrationID = "int_rentvine_demo"
	in.put = func(name, content string) {
		if err := os.WriteFile(filepath.Join(drop, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	in.files = func(folder string) map[string]string {
		entries, _ := os.ReadDir(filepath.Join(drop, folder))
		out := map[string]string{}
		for _, e := range entries {
			if !e.IsDir() {
				b, _ := os.ReadFile(filepath.Join(drop, folder, e.Name()))
				out[e.Name()] = string(b)
			}
		}
		return out
	}
	testRemoteInbox(t, in)
}

// An inbox in an S3 bucket (gofakes3, in process, over HTTP): credentials
// from the environment, the endpoint from the address's query.
func TestScheduledS3Inbox(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "AWSSECRET")
	t.Setenv("AWS_REGION", "us-east-1")
	backend := s3mem.New()
	if err := backend.CreateBucket("exports"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	in := &remoteInbox{env: newEnv(t, "fixed:0s", nil)}
	in.s = jobs.ScheduledImport{Name: "s3", Inbox: "s3://exports/inbox/*.csv?endpoint=" + srv.URL + "&use_path_style=true&disable_https=true"}
	in.s.Options.IntegrationID = "int_rentvine_demo"
	in.put = func(name, content string) {
		if _, err := backend.PutObject("exports", "inbox/"+name, map[string]string{}, strings.NewReader(content), int64(len(content)), nil); err != nil {
			t.Fatal(err)
		}
	}
	in.files = func(folder string) map[string]string {
		prefix := "inbox/"
		if folder != "" {
			prefix += folder + "/"
		}
		list, err := backend.ListBucket("exports", nil, gofakes3.ListBucketPage{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range list.Contents {
			name, ok := strings.CutPrefix(c.Key, prefix)
			if !ok || strings.Contains(name, "/") {
				continue
			}
			obj, err := backend.GetObject("exports", c.Key, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(obj.Contents)
			obj.Contents.Close()
			out[name] = string(b)
		}
		return out
	}
	testRemoteInbox(t, in)
}

// An inbox in a Google Cloud Storage bucket (fake-gcs-server, in process,
// over HTTP, found through STORAGE_EMULATOR_HOST as Google's client finds
// any emulator).
func TestScheduledGCSInbox(t *testing.T) {
	srv := fetchtest.StartGCS(t, "exports")
	in := &remoteInbox{env: newEnv(t, "fixed:0s", nil)}
	in.s = jobs.ScheduledImport{Name: "gcs", Inbox: "gs://exports/inbox/*.csv"}
	in.s.Options.IntegrationID = "int_rentvine_demo"
	in.put = func(name, content string) {
		srv.CreateObject(fakestorage.Object{ObjectAttrs: fakestorage.ObjectAttrs{BucketName: "exports", Name: "inbox/" + name}, Content: []byte(content)})
	}
	in.files = func(folder string) map[string]string {
		prefix := "inbox/"
		if folder != "" {
			prefix += folder + "/"
		}
		list, err := srv.ListObjectsWithOptionsPaginated("exports", fakestorage.ListOptions{Prefix: prefix, Delimiter: "/"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, o := range list.Objects {
			obj, err := srv.GetObject("exports", o.Name)
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(o.Name, prefix)] = string(obj.Content)
		}
		return out
	}
	testRemoteInbox(t, in)
}

// An inbox in an Azure Blob Storage container (Azurite, Microsoft's
// emulator, started by the test): the account's key from the environment,
// the emulator's endpoint from the address's query.
func TestScheduledAzureInbox(t *testing.T) {
	az := fetchtest.StartAzurite(t)
	t.Setenv("AZURE_STORAGE_ACCOUNT", fetchtest.AzuriteAccount)
	t.Setenv("AZURE_STORAGE_KEY", fetchtest.AzuriteKey)
	cred, err := azblob.NewSharedKeyCredential(fetchtest.AzuriteAccount, fetchtest.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	client, err := azblob.NewClientWithSharedKeyCredential(az.ServiceURL, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.CreateContainer(ctx, "exports", nil); err != nil {
		t.Fatal(err)
	}
	in := &remoteInbox{env: newEnv(t, "fixed:0s", nil)}
	in.s = jobs.ScheduledImport{Name: "azure", Inbox: "azblob://exports/inbox/*.csv?protocol=http&localemu=true&domain=" + az.Addr}
	in.s.Options.IntegrationID = "int_rentvine_demo"
	in.put = func(name, content string) {
		if _, err := client.UploadBuffer(ctx, "exports", "inbox/"+name, []byte(content), nil); err != nil {
			t.Fatal(err)
		}
	}
	in.files = func(folder string) map[string]string {
		prefix := "inbox/"
		if folder != "" {
			prefix += folder + "/"
		}
		out := map[string]string{}
		pager := client.NewListBlobsFlatPager("exports", &azblob.ListBlobsFlatOptions{Prefix: &prefix})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range page.Segment.BlobItems {
				name := strings.TrimPrefix(*item.Name, prefix)
				if strings.Contains(name, "/") {
					continue
				}
				resp, err := client.DownloadStream(ctx, "exports", *item.Name, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				out[name] = string(b)
			}
		}
		return out
	}
	testRemoteInbox(t, in)
}
