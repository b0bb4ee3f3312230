// Package fetchtest serves files to internal/fetch's tests and the
// command's: an SSH server on a loopback port with pkg/sftp's SFTP server.
package fetchtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SFTPServer is an SSH server on a loopback port that serves dir over SFTP
// (pkg/sftp's server) to the holder of one key.
type SFTPServer struct {
	Addr    string
	HostKey ssh.PublicKey
	// KeyFile is the client's private key, as a file.
	KeyFile string
}

// StartSFTP starts an SFTPServer of dir for the test.
func StartSFTP(t testing.TB, dir string) *SFTPServer {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	allowed, _ := ssh.NewPublicKey(clientPub)
	config := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(key.Marshal(), allowed.Marshal()) {
			return nil, nil
		}
		return nil, io.EOF
	}}
	config.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSSH(conn, config, dir)
		}
	}()
	block, _ := ssh.MarshalPrivateKey(clientPriv, "")
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return &SFTPServer{Addr: ln.Addr().String(), HostKey: hostSigner.PublicKey(), KeyFile: keyFile}
}

func serveSSH(conn net.Conn, config *ssh.ServerConfig, dir string) {
	_, chans, reqs, err := ssh.NewServerConn(conn, config)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only") // the client is told; nothing to do here if it is gone
			continue
		}
		ch, requests, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			for req := range requests {
				ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
				if err := req.Reply(ok, nil); err != nil || !ok {
					continue
				}
				// The session ends with Serve; what fails in it, the
				// client sees.
				if srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(dir)); err == nil {
					_ = srv.Serve()
				}
				ch.Close()
			}
		}()
	}
}

// KnownHosts writes a known_hosts file naming key for the server.
func (s *SFTPServer) KnownHosts(t testing.TB, key ssh.PublicKey) string {
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
