package fetch

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ReadError is a failure to read the source being spooled (the network,
// the server), as opposed to one of the private copy (the disk).
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Spool copies r into a new temporary file only this user can read
// (os.CreateTemp's 0600), named by pattern, and returns its path; on
// failure the file is removed. A failure to read r is a *ReadError; any
// other is the copy's.
func Spool(r io.Reader, pattern string) (string, error) {
	tmp, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", err
	}
	src := &readErrors{r: r}
	_, err = io.Copy(tmp, src)
	if src.err != nil {
		err = &ReadError{Err: src.err}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", errors.Join(err, removeQuietly(tmp.Name()))
	}
	return tmp.Name(), nil
}

// readErrors keeps the error a reader returned, other than io.EOF.
type readErrors struct {
	r   io.Reader
	err error
}

func (x *readErrors) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err != nil && err != io.EOF {
		x.err = err
	}
	return n, err
}

// removeQuietly removes a partial copy; a copy already gone is no error.
func removeQuietly(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("the partial copy %s is left: %w", path, err)
	}
	return nil
}
