package serve_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshtop/meshtop/cmd/meshtop/internal/serve"
)

// webPKI is a throwaway CA and a server certificate it signed for
// 127.0.0.1, as PEM files in a temporary directory.
type webPKI struct {
	dir, caFile, certFile, keyFile string
	pool                           *x509.CertPool
}

func newWebPKI(t *testing.T) webPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meshtop test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "meshtop serve"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := webPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "meshtop.crt"),
		keyFile: filepath.Join(dir, "meshtop.key"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", der)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeWebConfig writes an exporter-toolkit web configuration beside the
// certificates (which it names relative to itself, as the toolkit allows)
// with one basic-auth user whose password is stored as a bcrypt hash.
func writeWebConfig(t *testing.T, p webPKI, user, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("tls_server_config:\n  cert_file: meshtop.crt\n  key_file: meshtop.key\nbasic_auth_users:\n  %s: %s\n", user, hash)
	path := filepath.Join(p.dir, "web-config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// With --web.config.file, a real Prometheus scrapes /metrics over TLS
// (trusting a CA of the test's) with basic auth: the target is up and
// meshtop's series are queryable through Prometheus's API. A job without
// credentials gets 401, so does every endpoint (/healthz and /readyz too)
// without them; plain HTTP and clients not trusting the CA get nothing.
func TestTLSAndBasicAuthWithPrometheus(t *testing.T) {
	e := setup(t)
	pki := newWebPKI(t)
	const user, password = "prometheus", "correct horse battery staple"
	r := start(t, e, serve.Config{Instance: "tls", Listen: "127.0.0.1:0", WebConfigFile: writeWebConfig(t, pki, user, password)})
	passwordFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passwordFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	promURL := startPrometheusJobs(t,
		promJob{Name: "meshtop", Target: r.addrs.HTTP, CAFile: pki.caFile, User: user, PasswordFile: passwordFile},
		promJob{Name: "anonymous", Target: r.addrs.HTTP, CAFile: pki.caFile})

	waitFor(t, 2*time.Minute, "Prometheus to scrape meshtop over TLS with basic auth", func() bool {
		up := promQuery(t, promURL, `up{job="meshtop"}`)
		return len(up) == 1 && up[0].Value == 1
	})
	waitFor(t, time.Minute, "meshtop's series in Prometheus", func() bool {
		s := promQuery(t, promURL, `meshtop_up{job="meshtop"}`)
		return len(s) == 1 && s[0].Value == 1
	})
	if s := promQuery(t, promURL, `meshtop_build_info{job="meshtop"}`); len(s) != 1 || s[0].Labels["instance_name"] != "tls" || s[0].Labels["instance"] != r.addrs.HTTP {
		t.Errorf("meshtop_build_info through Prometheus: %+v", s)
	}
	var lastError string
	waitFor(t, 2*time.Minute, "the job without credentials to be refused", func() bool {
		lastError = targetError(t, promURL, "anonymous")
		return lastError != ""
	})
	if !strings.Contains(lastError, "401") {
		t.Errorf("the job without credentials: %q, want a 401", lastError)
	}
	if up := promQuery(t, promURL, `up{job="anonymous"}`); len(up) != 1 || up[0].Value != 0 {
		t.Errorf("up of the job without credentials: %+v", up)
	}

	base := "https://" + r.addrs.HTTP
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.pool}}}
	for _, c := range []struct {
		path, user, password string
		want                 int
	}{
		{"/metrics", "", "", 401},
		{"/metrics", user, "wrong", 401},
		{"/metrics", "someone", password, 401},
		{"/healthz", "", "", 401},
		{"/readyz", "", "", 401},
		{"/metrics", user, password, 200},
		{"/healthz", user, password, 200},
		{"/readyz", user, password, 200},
	} {
		req, _ := http.NewRequest("GET", base+c.path, nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("GET %s as %q: %v", c.path, c.user, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s as %q: %d, want %d", c.path, c.user, resp.StatusCode, c.want)
		}
		if c.want == 401 && (resp.Header.Get("WWW-Authenticate") != "Basic" || strings.Contains(string(b), "meshtop_")) {
			t.Errorf("GET %s as %q: a 401 without the challenge or with metrics: %v %q", c.path, c.user, resp.Header, b)
		}
		if c.want == 200 && c.path == "/metrics" && !strings.Contains(string(b), "\nmeshtop_up 1\n") {
			t.Errorf("GET /metrics with credentials: no meshtop_up 1")
		}
	}
	// Plain HTTP on the TLS port: Go's TLS server answers 400, no metrics.
	if resp, err := http.Get("http://" + r.addrs.HTTP + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "meshtop_") {
			t.Errorf("plain HTTP on the TLS port: %d %q", resp.StatusCode, b)
		}
	}
	// A client that does not trust the test's CA.
	if resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("a client without the CA connected: %s", resp.Status)
	}
	r.stop(t)
}

// targetError is the last scrape error of job's target, from Prometheus's
// /api/v1/targets ("" while it has none or has not been scraped).
func targetError(t *testing.T, promURL, job string) string {
	t.Helper()
	resp, err := http.Get(promURL + "/api/v1/targets")
	if err != nil {
		t.Fatalf("targets: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			ActiveTargets []struct {
				ScrapePool string `json:"scrapePool"`
				LastError  string `json:"lastError"`
				Health     string `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("targets: %v", err)
	}
	for _, tg := range body.Data.ActiveTargets {
		if tg.ScrapePool == job && tg.Health == "down" {
			return tg.LastError
		}
	}
	return ""
}
