package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob:// through the Azure SDK's default credentials
	_ "gocloud.dev/blob/gcsblob"   // gs:// through Google's Application Default Credentials
	_ "gocloud.dev/blob/s3blob"    // s3:// through the AWS SDK's default credential chain
	"gocloud.dev/gcerrors"
)

// openBucket opens the object at an s3://, gs:// or azblob://bucket/key
// address through gocloud.dev/blob: credentials from the cloud's default
// chain (AWS: the environment, the shared files, an instance's role;
// Google: Application Default Credentials; Azure: AZURE_STORAGE_* or
// azidentity's default), never from the address; its query configures the
// bucket (region, endpoint and use_path_style for an S3-compatible store;
// domain, protocol and localemu for Azure).
func openBucket(ctx context.Context, u *url.URL, shown string) (io.ReadCloser, error) {
	key := strings.TrimPrefix(u.Path, "/")
	if key == "" {
		return nil, fmt.Errorf("%s: name the object after the bucket (s3://bucket/exports/residents.csv)", shown)
	}
	bucket, err := bucketOf(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", shown, err)
	}
	r, err := bucket.NewReader(ctx, key, nil)
	if err != nil {
		_ = bucket.Close() // the error that matters is the one returned
		switch gcerrors.Code(err) {
		case gcerrors.NotFound:
			return nil, fmt.Errorf("cannot read %s: the bucket holds no such object", shown)
		case gcerrors.PermissionDenied:
			return nil, fmt.Errorf("cannot read %s: access denied (check the %s credentials the environment gives)", shown, cloudOf(u.Scheme))
		}
		return nil, fmt.Errorf("cannot read %s: %v", shown, err)
	}
	return &bucketObject{Reader: r, bucket: bucket}, nil
}

// bucketOf opens the bucket of an address, configured by its query (the
// address's path is the caller's: an object, or a folder's prefix).
func bucketOf(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	return blob.OpenBucket(ctx, (&url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}).String())
}

// bucketObject is an object being read whose Close closes its bucket too.
type bucketObject struct {
	*blob.Reader
	bucket *blob.Bucket
}

func (o *bucketObject) Close() error { return errors.Join(o.Reader.Close(), o.bucket.Close()) }

// bucketFolder is a prefix of a bucket: its "files" are the objects
// directly under the prefix.
type bucketFolder struct {
	bucket *blob.Bucket
	root   *url.URL // the folder's address, query included
	prefix string   // the folder's key prefix, "" or ending in "/"
}

// openBucketFolder opens the prefix of a bucket at an address
// (s3://bucket/inbox?region=...).
func openBucketFolder(ctx context.Context, u *url.URL, shown string) (*bucketFolder, error) {
	bucket, err := bucketOf(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %v", shown, err)
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	root := *u
	return &bucketFolder{bucket: bucket, root: &root, prefix: prefix}, nil
}

func (f *bucketFolder) key(name string) string { return f.prefix + strings.TrimPrefix(name, "/") }

// bucketError says fs.ErrNotExist for a missing object.
func bucketError(err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%v: %w", err, fs.ErrNotExist)
	}
	return err
}

func (f *bucketFolder) List(ctx context.Context, dir string) ([]FileInfo, error) {
	prefix := f.prefix
	if dir != "" {
		prefix = f.key(dir) + "/"
	}
	var out []FileInfo
	it := f.bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cannot list %s: %v", Redact(f.Address(dir)), err)
		}
		if !obj.IsDir {
			out = append(out, FileInfo{Name: path.Base(obj.Key), Size: obj.Size, ModTime: obj.ModTime})
		}
	}
}

func (f *bucketFolder) Stat(ctx context.Context, name string) (FileInfo, error) {
	attrs, err := f.bucket.Attributes(ctx, f.key(name))
	if err != nil {
		return FileInfo{}, bucketError(err)
	}
	return FileInfo{Name: path.Base(name), Size: attrs.Size, ModTime: attrs.ModTime}, nil
}

func (f *bucketFolder) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	r, err := f.bucket.NewReader(ctx, f.key(name), nil)
	if err != nil {
		return nil, bucketError(err)
	}
	return r, nil
}

func (f *bucketFolder) Write(ctx context.Context, name string, data []byte) error {
	return f.bucket.WriteAll(ctx, f.key(name), data, nil)
}

func (f *bucketFolder) Rename(ctx context.Context, from, to string) error {
	if err := f.bucket.Copy(ctx, f.key(to), f.key(from), nil); err != nil {
		return bucketError(err)
	}
	return bucketError(f.bucket.Delete(ctx, f.key(from)))
}

func (f *bucketFolder) Remove(ctx context.Context, name string) error {
	if err := f.bucket.Delete(ctx, f.key(name)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return err
	}
	return nil
}

func (f *bucketFolder) Address(name string) string {
	u := *f.root
	u.Path, u.RawPath = "/"+f.key(name), ""
	return u.String()
}

func (f *bucketFolder) Local(string) (string, bool) { return "", false }
func (f *bucketFolder) Close() error                { return f.bucket.Close() }

// cloudOf names the cloud of a bucket's scheme.
func cloudOf(scheme string) string {
	switch scheme {
	case "gs":
		return "Google Cloud"
	case "azblob":
		return "Azure"
	}
	return "AWS"
}
