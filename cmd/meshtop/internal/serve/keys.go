package serve

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/meshtop/meshtop/data/safetext"
)

// keyFile is an authorized_keys file, re-read when it changes (checked at
// each login and every keyCheck by the server's watcher), so keys are added
// and revoked without a restart.
type keyFile struct {
	flag, path string

	mu      sync.Mutex
	mod     time.Time
	size    int64
	ino     uint64
	gen     uint64          // bumped by every successful re-read
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
		return fmt.Errorf("%s %s: %w", kf.flag, kf.path, pathErr(err))
	}
	b, err := os.ReadFile(kf.path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kf.flag, kf.path, pathErr(err))
	}
	keys, err := parseAuthorizedKeys(b)
	if err != nil {
		return fmt.Errorf("%s %s: %w", kf.flag, kf.path, err)
	}
	kf.keys, kf.mod, kf.size, kf.ino = keys, st.ModTime(), st.Size(), inode(st)
	kf.gen++
	return nil
}

func inode(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
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

// refresh re-reads the file when it changed (modification time, size or
// inode: an edit in place or a new file renamed over it) and returns the
// generation of the keys now held. A file that became unreadable or
// malformed keeps the last good keys; the error is returned the first time
// it is seen, for the caller to log once.
func (kf *keyFile) refresh() (uint64, error) {
	if kf == nil {
		return 0, nil
	}
	kf.mu.Lock()
	defer kf.mu.Unlock()
	var err error
	if st, serr := os.Stat(kf.path); serr != nil || !st.ModTime().Equal(kf.mod) || st.Size() != kf.size || inode(st) != kf.ino {
		// (The error's text is remembered as the one line it is logged as.)
		if rerr := kf.reload(); rerr != nil && safetext.Line(rerr.Error()) != kf.lastErr {
			kf.lastErr, err = safetext.Line(rerr.Error()), rerr
		} else if rerr == nil {
			kf.lastErr = ""
		}
	}
	return kf.gen, err
}

// has reports whether key is listed, re-reading the file first when it
// changed (see refresh for the error).
func (kf *keyFile) has(key gossh.PublicKey) (bool, error) {
	if kf == nil {
		return false, nil
	}
	_, err := kf.refresh()
	return kf.lists(key), err
}

// lists reports whether key is among the keys last read.
func (kf *keyFile) lists(key gossh.PublicKey) bool {
	if kf == nil {
		return false
	}
	kf.mu.Lock()
	defer kf.mu.Unlock()
	return kf.keys[string(key.Marshal())]
}

// pathErr is err without the path (the caller names it), with a hint when
// it is a permission error: which user could not read it.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (meshtop runs as uid %d: the file must be readable, and every directory above it searchable, by that user)", err, os.Geteuid())
	}
	return err
}

// hostKeyName is the host key's file name in the default directory.
const hostKeyName = "ssh_host_ed25519_key"

// DefaultHostKeyPath is where --ssh-host-key points when it is not set: in
// $STATE_DIRECTORY (systemd's StateDirectory=; the first when it lists
// several), else $XDG_STATE_HOME/meshtop, else ~/.local/state/meshtop —
// never the working directory. getenv reads the environment.
func DefaultHostKeyPath(getenv func(string) string) (string, error) {
	if d, _, _ := strings.Cut(getenv("STATE_DIRECTORY"), ":"); filepath.IsAbs(d) {
		return filepath.Join(d, hostKeyName), nil
	}
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "meshtop", hostKeyName), nil
	}
	if h := getenv("HOME"); filepath.IsAbs(h) && h != "/" {
		return filepath.Join(h, ".local", "state", "meshtop", hostKeyName), nil
	}
	return "", errors.New("--ssh-host-key: no state directory to keep the host key in ($STATE_DIRECTORY, $XDG_STATE_HOME and $HOME are unset): give its path")
}

// hostKey returns the PEM of the host key at path, generating an ed25519
// key there when the file does not exist (see writeHostKey).
func hostKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("--ssh-host-key: no path")
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := writeHostKey(path); err != nil {
			return nil, fmt.Errorf("--ssh-host-key %s: generating a key: %w", path, pathErr(err))
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ssh-host-key %s: %w", path, pathErr(err))
	}
	if _, err := gossh.ParsePrivateKey(b); err != nil {
		return nil, fmt.Errorf("--ssh-host-key %s: not an unencrypted private key (%v)", path, err)
	}
	return b, nil
}

// writeHostKey generates an ed25519 key at path (mode 0600) and its public
// half at path.pub (mode 0644, whatever the umask). Missing directories are
// created 0700; an existing directory's mode and owner are never touched
// (keygen's writer chmods the parent to 0700: beside a PostgreSQL data
// directory that locked the postgres user out). The private key appears
// whole or not at all (written to a temporary file, synced, then linked
// into place, or renamed where hard links are not supported); if another
// process made one meanwhile, that one is kept.
func writeHostKey(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		return err
	}
	tmp, err := writeTemp(dir, pem.EncodeToMemory(block), 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	switch err := os.Link(tmp, path); {
	case errors.Is(err, fs.ErrExist):
		return nil // another process won: its key (and .pub) stand
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EXDEV):
		// A file system without hard links: rename, still whole or nothing.
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	ptmp, err := writeTemp(dir, gossh.MarshalAuthorizedKey(sshPub), 0o644)
	if err != nil {
		return err
	}
	if err := os.Rename(ptmp, path+".pub"); err != nil {
		os.Remove(ptmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writeTemp writes b to a new file in dir with exactly mode (fchmod, so
// the umask does not narrow it), synced, and returns its name.
func writeTemp(dir string, b []byte, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(dir, ".meshtop-key-*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
