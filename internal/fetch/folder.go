package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Folder is a folder where exports land, as a schedule's inbox sees it: a
// local folder, a folder on an SFTP server, or a prefix of a bucket. Names
// are slash-separated and relative to the folder ("residents.csv",
// "processing/residents.csv"); a name's folders are made as needed.
type Folder interface {
	// List returns the files directly in the subfolder dir ("" is the
	// folder itself), sorted by name: regular files only. A missing
	// subfolder is empty.
	List(ctx context.Context, dir string) ([]FileInfo, error)
	// Stat describes a file; fs.ErrNotExist when there is none.
	Stat(ctx context.Context, name string) (FileInfo, error)
	// Open reads a file.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
	// Write makes a small file (a note, a claim record), replacing one of
	// the same name.
	Write(ctx context.Context, name string, data []byte) error
	// Rename moves a file; fs.ErrNotExist when from is gone (another
	// claimed it). On a local folder and an SFTP server the move is
	// atomic; in a bucket it is a copy, then a delete.
	Rename(ctx context.Context, from, to string) error
	// Remove deletes a file; a missing one is not an error.
	Remove(ctx context.Context, name string) error
	// Address is the full address of a file: a path for a local folder,
	// a URL (query included, credentials never) for a remote one.
	Address(name string) string
	// Local is the path of a file on this machine, when it is on it.
	Local(name string) (string, bool)
	// Close ends the folder's session.
	Close() error
}

// FileInfo describes a file of a Folder.
type FileInfo struct {
	// Name is the file's name, without its folder.
	Name    string
	Size    int64
	ModTime time.Time
	// Outside, for a local link, says it points outside the folder: it
	// is not the folder's to import.
	Outside bool
}

// OpenFolder opens the folder at a local path or an address: sftp://,
// s3://, gs:// or azblob://. An https:// address is refused: nothing can
// be listed or moved there.
func OpenFolder(ctx context.Context, address string, opts Options) (Folder, error) {
	if !IsURL(address) {
		abs, err := filepath.Abs(address)
		if err != nil {
			return nil, err
		}
		return localFolder(abs), nil
	}
	shown := Redact(address)
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("%s is not an address", shown)
	}
	switch u.Scheme {
	case "sftp":
		s, err := dialSFTP(ctx, u, shown, opts.SSH)
		if err != nil {
			return nil, err
		}
		return &sftpFolder{session: s, root: u}, nil
	case "s3", "gs", "azblob":
		return openBucketFolder(ctx, u, shown)
	}
	return nil, fmt.Errorf("%s: an inbox is a folder, an sftp:// one or a bucket's (s3://, gs://, azblob://): %s:// cannot be listed or moved", shown, u.Scheme)
}

// SplitInbox parses a schedule's inbox, a folder and a pattern of its file
// names (/data/inbox/*.csv, sftp://pms@host/drop/*.xlsx,
// s3://bucket/inbox/*.csv?region=eu-west-1), into the folder's address and
// the pattern.
func SplitInbox(inbox string) (folder, pattern string, err error) {
	if !IsURL(inbox) {
		return filepath.Dir(inbox), filepath.Base(inbox), nil
	}
	u, err := url.Parse(inbox)
	if err != nil {
		return "", "", fmt.Errorf("%s is not an address", Redact(inbox))
	}
	pattern = path.Base(u.Path)
	if u.Path == "" || u.Path == "/" || pattern == "/" {
		return "", "", fmt.Errorf("%s: end the address with the files' name or pattern (%s://%s/inbox/*.csv)", Redact(inbox), u.Scheme, u.Host)
	}
	u.Path = path.Dir(u.Path)
	u.RawPath = ""
	return u.String(), pattern, nil
}

// ParentOf is the folder address and name, relative to it, of the file at
// address two levels up (the inbox of a file in its processing/): the
// inverse of Folder.Address.
func ParentOf(address string) (folder, name string) {
	if !IsURL(address) {
		dir := filepath.Dir(filepath.Dir(address))
		rel, _ := filepath.Rel(dir, address)
		return dir, filepath.ToSlash(rel)
	}
	u, err := url.Parse(address)
	if err != nil {
		return "", ""
	}
	dir := path.Dir(path.Dir(u.Path))
	name = strings.TrimPrefix(strings.TrimPrefix(u.Path, dir), "/")
	u.Path, u.RawPath = dir, ""
	return u.String(), name
}

// localFolder is a folder on this machine.
type localFolder string

func (f localFolder) path(name string) string {
	return filepath.Join(string(f), filepath.FromSlash(name))
}

func (f localFolder) List(_ context.Context, dir string) ([]FileInfo, error) {
	entries, err := os.ReadDir(f.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	for _, e := range entries {
		info, err := f.stat(path.Join(dir, e.Name()))
		if err == nil {
			out = append(out, info)
		}
	}
	return out, nil
}

// stat describes a regular file, or a link to one inside the folder (a
// link out is Outside).
func (f localFolder) stat(name string) (FileInfo, error) {
	p := f.path(name)
	info, err := os.Lstat(p)
	if err != nil {
		return FileInfo{}, err
	}
	outside := false
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			return FileInfo{}, err
		}
		outside = !within(string(f), target)
		if info, err = os.Stat(target); err != nil {
			return FileInfo{}, err
		}
	}
	if !info.Mode().IsRegular() {
		return FileInfo{}, fmt.Errorf("%s is not a regular file: %w", p, fs.ErrNotExist)
	}
	return FileInfo{Name: path.Base(name), Size: info.Size(), ModTime: info.ModTime(), Outside: outside}, nil
}

// within reports whether path is inside dir (both resolved).
func within(dir, path string) bool {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(real, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func (f localFolder) Stat(_ context.Context, name string) (FileInfo, error) { return f.stat(name) }

func (f localFolder) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return os.Open(f.path(name))
}

func (f localFolder) Write(_ context.Context, name string, data []byte) error {
	p := f.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (f localFolder) Rename(_ context.Context, from, to string) error {
	if err := os.MkdirAll(filepath.Dir(f.path(to)), 0o700); err != nil {
		return err
	}
	return os.Rename(f.path(from), f.path(to))
}

func (f localFolder) Remove(_ context.Context, name string) error {
	if err := os.Remove(f.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (f localFolder) Address(name string) string       { return f.path(name) }
func (f localFolder) Local(name string) (string, bool) { return f.path(name), true }
func (f localFolder) Close() error                     { return nil }

// sftpFolder is a folder on an SFTP server.
type sftpFolder struct {
	session *sftpSession
	root    *url.URL
}

func (f *sftpFolder) path(name string) string { return path.Join(f.root.Path, name) }

func (f *sftpFolder) List(_ context.Context, dir string) ([]FileInfo, error) {
	entries, err := f.session.files.ReadDir(f.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list %s: %v", Redact(f.Address(dir)), err)
	}
	var out []FileInfo
	for _, e := range entries {
		if e.Mode().IsRegular() {
			out = append(out, FileInfo{Name: e.Name(), Size: e.Size(), ModTime: e.ModTime()})
		}
	}
	return out, nil
}

func (f *sftpFolder) Stat(_ context.Context, name string) (FileInfo, error) {
	info, err := f.session.files.Stat(f.path(name))
	if err != nil {
		return FileInfo{}, err
	}
	if !info.Mode().IsRegular() {
		return FileInfo{}, fmt.Errorf("%s is not a regular file: %w", Redact(f.Address(name)), fs.ErrNotExist)
	}
	return FileInfo{Name: info.Name(), Size: info.Size(), ModTime: info.ModTime()}, nil
}

func (f *sftpFolder) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return f.session.files.Open(f.path(name))
}

func (f *sftpFolder) Write(_ context.Context, name string, data []byte) error {
	files := f.session.files
	p := f.path(name)
	if err := files.MkdirAll(path.Dir(p)); err != nil {
		return err
	}
	tmp := p + ".tmp"
	w, err := files.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return errors.Join(err, w.Close())
	}
	if err := w.Close(); err != nil {
		return err
	}
	// posix-rename@openssh.com replaces; a server without it renames only
	// to a free name.
	if err := files.PosixRename(tmp, p); err == nil {
		return nil
	}
	if err := files.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return files.Rename(tmp, p)
}

func (f *sftpFolder) Rename(_ context.Context, from, to string) error {
	files := f.session.files
	if err := files.MkdirAll(path.Dir(f.path(to))); err != nil {
		return err
	}
	err := files.Rename(f.path(from), f.path(to))
	if err != nil {
		if _, serr := files.Stat(f.path(from)); errors.Is(serr, fs.ErrNotExist) {
			return fs.ErrNotExist
		}
	}
	return err
}

func (f *sftpFolder) Remove(_ context.Context, name string) error {
	if err := f.session.files.Remove(f.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (f *sftpFolder) Address(name string) string {
	u := *f.root
	u.Path, u.RawPath = f.path(name), ""
	return u.String()
}

func (f *sftpFolder) Local(string) (string, bool) { return "", false }
func (f *sftpFolder) Close() error                { return f.session.Close() }
