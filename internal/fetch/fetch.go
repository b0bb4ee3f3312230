// Package fetch reads an input file from where a PMS export lands, by its
// URL: an https:// address, a file on an SFTP server (sftp://), or an
// object in a bucket (s3://, gs://, azblob://, through gocloud.dev/blob);
// and lists, moves and writes the files of a schedule's inbox (Folder) on
// this machine, an SFTP server or in a bucket. The
// caller copies what it reads to a private file and imports that (the
// content, not the address, identifies the import). HTTPS credentials come
// from the URL's user info (basic auth) or an Authorization header the
// caller takes from the environment; SFTP's from the SSH agent or a key
// file, the server checked against known_hosts. An address is shown only as
// Redact gives it, without credentials or query.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// IsURL tells whether an input argument is an address rather than a path:
// it has a scheme and a host (https://host/...).
func IsURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != "" && strings.Contains(s, "://")
}

// Redact returns an address as it may be shown: scheme, host and path, with
// no user info (a password) and no query (a signed URL's token). A path is
// shown as it is.
func Redact(raw string) string {
	if !IsURL(raw) {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "the address given"
	}
	return u.Scheme + "://" + u.Host + u.Path // unescaped: shown, never requested
}

// Name returns the file name an address ends with, which tells its format
// (roster.csv, export.xlsx).
func Name(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// Options are how a file is fetched.
type Options struct {
	// Authorization, when set, is the Authorization header sent (from
	// the environment: IMPORTER_SOURCE_AUTHORIZATION).
	Authorization string
	// Client makes the requests. Default: one that gives up on an
	// answer after 30 seconds without a byte (the body may take longer).
	Client *http.Client
	// SSH is how an sftp:// address is reached.
	SSH SSHOptions
}

// Open starts reading the file at an https:// address. The error names the
// address redacted, and says what failed in one sentence.
func Open(ctx context.Context, raw string, opts Options) (io.ReadCloser, error) {
	shown := Redact(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not an address", shown)
	}
	switch u.Scheme {
	case "https":
	case "sftp":
		return openSFTP(ctx, u, shown, opts.SSH)
	case "s3", "gs", "azblob":
		return openBucket(ctx, u, shown)
	case "http":
		return nil, fmt.Errorf("%s: use https:// (a roster holds personal data)", shown)
	default:
		return nil, fmt.Errorf("%s: %s:// cannot be read; give an https://, sftp://, s3://, gs:// or azblob:// address, or a file", shown, u.Scheme)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, fmt.Errorf("%s is not an address", shown)
	}
	if u.User != nil {
		password, _ := u.User.Password()
		req.SetBasicAuth(u.User.Username(), password)
		req.URL.User = nil
	}
	if opts.Authorization != "" {
		req.Header.Set("Authorization", opts.Authorization)
	}
	client := opts.Client
	if client == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.ResponseHeaderTimeout = 30 * time.Second
		client = &http.Client{Transport: transport}
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the address, token and all
		}
		return nil, fmt.Errorf("cannot read %s: %v", shown, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		why := resp.Status
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			why += " (check the address's credentials or IMPORTER_SOURCE_AUTHORIZATION)"
		}
		return nil, fmt.Errorf("cannot read %s: the server answered %s", shown, why)
	}
	return resp.Body, nil
}
