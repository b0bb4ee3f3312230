package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob" // s3:// through the AWS SDK's default credential chain
	"gocloud.dev/gcerrors"
)

// openBucket opens the object at an s3://bucket/key address through
// gocloud.dev/blob: credentials from the AWS SDK's default chain (the
// environment, the shared files, an instance's role), never from the
// address; its query configures the bucket (region, endpoint and
// use_path_style for an S3-compatible store).
func openBucket(ctx context.Context, u *url.URL, shown string) (io.ReadCloser, error) {
	key := strings.TrimPrefix(u.Path, "/")
	if key == "" {
		return nil, fmt.Errorf("%s: name the object after the bucket (s3://bucket/exports/residents.csv)", shown)
	}
	bucket, err := blob.OpenBucket(ctx, (&url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}).String())
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
			return nil, fmt.Errorf("cannot read %s: access denied (check the AWS credentials the environment gives)", shown)
		}
		return nil, fmt.Errorf("cannot read %s: %v", shown, err)
	}
	return &bucketObject{Reader: r, bucket: bucket}, nil
}

// bucketObject is an object being read whose Close closes its bucket too.
type bucketObject struct {
	*blob.Reader
	bucket *blob.Bucket
}

func (o *bucketObject) Close() error { return errors.Join(o.Reader.Close(), o.bucket.Close()) }
