package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHOptions are how an SFTP server is reached: as OpenSSH would, with the
// keys of the agent and of the key files given, and the server's host key
// checked against known_hosts (an unknown or changed key is refused).
type SSHOptions struct {
	// AgentSocket is the SSH agent's socket (SSH_AUTH_SOCK); empty for
	// none.
	AgentSocket string
	// KeyFiles are private keys to offer, unencrypted (id_ed25519, say);
	// those that do not exist are passed over.
	KeyFiles []string
	// KnownHosts are the known_hosts files the server's key must be in.
	KnownHosts []string
	// Timeout bounds the connection and the handshake. Default 30 s.
	Timeout time.Duration
}

// openSFTP opens the file at an sftp://user@host[:port]/path address.
func openSFTP(ctx context.Context, u *url.URL, shown string, o SSHOptions) (io.ReadCloser, error) {
	s, err := dialSFTP(ctx, u, shown, o)
	if err != nil {
		return nil, err
	}
	f, err := s.files.Open(u.Path)
	if err != nil {
		_ = s.Close() // the session is of no more use; why it could not open the file is the error
		return nil, fmt.Errorf("cannot read %s: %v", shown, err)
	}
	return &sftpFile{File: f, session: s}, nil
}

// sftpSession is a signed-in SFTP session: its SSH connection and SFTP
// client.
type sftpSession struct {
	files  *sftp.Client
	client *ssh.Client
}

func (s *sftpSession) Close() error { return errors.Join(s.files.Close(), s.client.Close()) }

// dialSFTP signs in to the server of an sftp://user@host[:port]/path
// address.
func dialSFTP(ctx context.Context, u *url.URL, shown string, o SSHOptions) (*sftpSession, error) {
	if u.User == nil || u.User.Username() == "" {
		return nil, fmt.Errorf("%s: give the user in the address (sftp://user@host/path)", shown)
	}
	if _, ok := u.User.Password(); ok {
		return nil, fmt.Errorf("%s: a password in the address is not used; SFTP signs in with the SSH agent or a key file", shown)
	}
	var existing []string
	for _, f := range o.KnownHosts {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	if len(existing) == 0 {
		return nil, fmt.Errorf("%s: no known_hosts file to check the server's key against (add it with ssh-keyscan, or set IMPORTER_SSH_KNOWN_HOSTS)", shown)
	}
	hostKeys, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("%s: reading known_hosts: %v", shown, err)
	}
	var signers []ssh.Signer
	if o.AgentSocket != "" {
		if conn, err := net.Dial("unix", o.AgentSocket); err == nil {
			defer conn.Close()
			if keys, err := agent.NewClient(conn).Signers(); err == nil {
				signers = append(signers, keys...)
			}
		}
	}
	for _, f := range o.KeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		key, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: the key file %s cannot be used: %v", shown, f, err)
		}
		signers = append(signers, key)
	}
	if len(signers) == 0 {
		return nil, fmt.Errorf("%s: no SSH key to sign in with: start an SSH agent (SSH_AUTH_SOCK) or give a key file (IMPORTER_SSH_KEY)", shown)
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "22")
	}
	config := &ssh.ClientConfig{User: u.User.Username(), Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)}, HostKeyCallback: hostKeys, Timeout: timeout}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %v", shown, err)
	}
	// The handshake has the timeout; the file's reading, however long, not.
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot reach %s: %v", shown, err)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, host, config)
	if err != nil {
		conn.Close()
		var keyErr *knownhosts.KeyError
		if errors.As(err, &keyErr) {
			if len(keyErr.Want) == 0 {
				return nil, fmt.Errorf("cannot read %s: the server's key is not in known_hosts (check it, then add it with ssh-keyscan)", shown)
			}
			return nil, fmt.Errorf("cannot read %s: the server's key is not the one known_hosts holds: refused", shown)
		}
		return nil, fmt.Errorf("cannot read %s: %v", shown, err)
	}
	client := ssh.NewClient(c, chans, reqs)
	if err := conn.SetDeadline(time.Time{}); err != nil {
		_ = client.Close() // the error that matters is the one returned
		return nil, fmt.Errorf("cannot read %s: %v", shown, err)
	}
	files, err := sftp.NewClient(client)
	if err != nil {
		_ = client.Close() // the error that matters is the one returned
		return nil, fmt.Errorf("cannot read %s: the server speaks no SFTP: %v", shown, err)
	}
	return &sftpSession{files: files, client: client}, nil
}

// sftpFile is a remote file whose Close ends its session too.
type sftpFile struct {
	*sftp.File
	session *sftpSession
}

func (f *sftpFile) Close() error { return errors.Join(f.File.Close(), f.session.Close()) }
