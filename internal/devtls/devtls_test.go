package devtls_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/wsroute/wsroute/internal/devtls"
	"github.com/wsroute/wsroute/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestGeneratedCertificateIsTrustedThroughTheCAOnly(t *testing.T) {
	f, err := devtls.Generate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(f.KeyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, st.Mode())
	}
	srvCfg, err := f.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.TLS = srvCfg
	srv.StartTLS()
	defer srv.Close()

	cliCfg, err := f.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		url := "https://" + net.JoinHostPort(host, port)
		tr := &http.Transport{TLSClientConfig: cliCfg}
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			t.Fatalf("%s with the CA: %v", host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if string(b) != "ok" {
			t.Fatalf("%s: got %q", host, b)
		}
	}

	// Without the CA the certificate is not trusted.
	tr := &http.Transport{TLSClientConfig: &tls.Config{}}
	defer tr.CloseIdleConnections()
	_, err = (&http.Client{Transport: tr}).Get(srv.URL)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("without the CA: %v, want x509.UnknownAuthorityError", err)
	}
}
