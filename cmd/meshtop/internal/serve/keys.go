package serve

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/charmbracelet/keygen"
	gossh "golang.org/x/crypto/ssh"
)

// keyFile is an authorized_keys file, re-read when it changes (checked at
// each login), so keys are added and revoked without a restart.
type keyFile struct {
	flag, path string

	mu      sync.Mutex
	mod     time.Time
	size    int64
	keys    map[string]bool // wire form of each key
	lastErr string
}

// loadKeyFile reads path now; an unreadable or malformed file is an error
// naming the flag.
func loadKeyFile(flag, path string) (*keyFile, error) {
	kf := &keyFile{flag: flag, path: path}
	if err := kf.reload(); err != nil {
		return nil, err
	}
	return kf, nil
}

func (kf *keyFile) reload() error {
	st, err := os.Stat(kf.path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kf.flag, kf.path, unwrapPath(err))
	}
	b, err := os.ReadFile(kf.path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kf.flag, kf.path, unwrapPath(err))
	}
	keys, err := parseAuthorizedKeys(b)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kf.flag, kf.path, err)
	}
	kf.keys, kf.mod, kf.size = keys, st.ModTime(), st.Size()
	return nil
}

// parseAuthorizedKeys reads OpenSSH authorized_keys lines (options before
// the key are accepted and ignored; blank lines and # comments skipped).
func parseAuthorizedKeys(b []byte) (map[string]bool, error) {
	keys := map[string]bool{}
	for n, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: not a public key (%v)", n+1, err)
		}
		keys[string(k.Marshal())] = true
	}
	return keys, nil
}

// has reports whether key is listed, re-reading the file first when it
// changed; a file that became unreadable keeps the last good keys (and is
// logged once by the caller through the returned error).
func (kf *keyFile) has(key gossh.PublicKey) (bool, error) {
	if kf == nil {
		return false, nil
	}
	kf.mu.Lock()
	defer kf.mu.Unlock()
	var err error
	if st, serr := os.Stat(kf.path); serr != nil || !st.ModTime().Equal(kf.mod) || st.Size() != kf.size {
		if rerr := kf.reload(); rerr != nil && rerr.Error() != kf.lastErr {
			kf.lastErr, err = rerr.Error(), rerr
		} else if rerr == nil {
			kf.lastErr = ""
		}
	}
	return kf.keys[string(key.Marshal())], err
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostKey returns the PEM of the host key at path, generating an ed25519
// key there (mode 0600, and path.pub) when the file does not exist.
func hostKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("--ssh-host-key: no path")
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("--ssh-host-key %s: creating its directory: %w", path, unwrapPath(err))
		}
		if _, err := keygen.New(path, keygen.WithKeyType(keygen.Ed25519), keygen.WithWrite()); err != nil {
			return nil, fmt.Errorf("--ssh-host-key %s: generating a key: %w", path, unwrapPath(err))
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ssh-host-key %s: %w", path, unwrapPath(err))
	}
	if _, err := gossh.ParsePrivateKey(b); err != nil {
		return nil, fmt.Errorf("--ssh-host-key %s: not an unencrypted private key (%v)", path, err)
	}
	return b, nil
}
