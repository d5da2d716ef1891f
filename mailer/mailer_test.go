package mailer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keylens/keylens/mailer"
	"github.com/keylens/keylens/mailer/smtptest"
)

// selfSigned returns a server certificate for 127.0.0.1 and a client
// configuration that trusts only it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

var msg = mailer.Message{To: "ada@example.com", Subject: "Reset your password — keylens",
	Body: "Follow this link:\nhttps://developers.example.com/reset/" + strings.Repeat("x", 90) + "\n"}

func check(t *testing.T, srv *smtptest.Server) {
	t.Helper()
	m := srv.Wait(t, 1, 5*time.Second)
	if m.From != "portal@example.com" || len(m.To) != 1 || m.To[0] != "ada@example.com" {
		t.Errorf("envelope %s → %v", m.From, m.To)
	}
	if !strings.Contains(m.Raw, "Subject: =?utf-8?q?") || m.Body != msg.Body {
		t.Errorf("received %q\nbody %q, want %q", m.Raw, m.Body, msg.Body)
	}
}

func TestSMTPWithSTARTTLSAndAuth(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := smtptest.Start(t, serverTLS)
	srv.User, srv.Pass = "mailer", "s3cret"
	s, err := mailer.NewSMTP("smtp://mailer:s3cret@"+srv.Addr, "portal@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s.TLSConfig = clientTLS
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	check(t, srv)

	s.Pass = "wrong"
	if err := s.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Errorf("wrong password: %v", err)
	}
}

func TestSMTPSTARTTLSVerifiesTheServer(t *testing.T) {
	serverTLS, _ := selfSigned(t)
	srv := smtptest.Start(t, serverTLS)
	s, err := mailer.NewSMTP("smtp://"+srv.Addr, "portal@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), msg); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("an untrusted certificate: %v, want a STARTTLS error", err)
	}
	if n := len(srv.Mails()); n != 0 {
		t.Errorf("%d mails delivered over an unverified connection", n)
	}
}

func TestSMTPSImplicitTLS(t *testing.T) {
	serverTLS, clientTLS := selfSigned(t)
	srv := smtptest.StartImplicitTLS(t, serverTLS)
	s, err := mailer.NewSMTP("smtps://"+srv.Addr, "portal@example.com")
	if err != nil {
		t.Fatal(err)
	}
	s.TLSConfig = clientTLS
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	check(t, srv)
}

func TestSMTPPlainOnLoopback(t *testing.T) {
	srv := smtptest.Start(t, nil)
	s, err := mailer.NewSMTP("smtp://"+srv.Addr, "portal@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	check(t, srv)
	if err := s.Send(context.Background(), mailer.Message{To: "a@example.com\r\nBcc: b@example.com", Subject: "x"}); err == nil {
		t.Error("a recipient with a line break was sent")
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	for _, c := range []struct{ url, from string }{
		{"http://mail.example.com", "a@example.com"},
		{"smtp://", "a@example.com"},
		{"smtp://mail.example.com/path", "a@example.com"},
		{"smtp://mail.example.com", ""},
		{"smtp://mail.example.com", "not an address"},
	} {
		if _, err := mailer.New(c.url, c.from, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("New(%q, %q) accepted", c.url, c.from)
		}
	}
	if s, err := mailer.NewSMTP("smtps://u:p@mail.example.com", "a@example.com"); err != nil || s.Addr != "mail.example.com:465" || !s.Implicit || s.User != "u" {
		t.Errorf("smtps defaults: %+v, %v", s, err)
	}
	if s, err := mailer.NewSMTP("smtp://mail.example.com", "a@example.com"); err != nil || s.Addr != "mail.example.com:587" || s.Implicit {
		t.Errorf("smtp defaults: %+v, %v", s, err)
	}
}

func TestWithoutSMTPTheLogHasTheEmailMarked(t *testing.T) {
	var b strings.Builder
	s, err := mailer.New("", "", slog.New(slog.NewTextHandler(&b, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "EMAIL NOT SENT") || !strings.Contains(b.String(), "ada@example.com") || !strings.Contains(b.String(), "/reset/") {
		t.Errorf("log: %s", b.String())
	}
}
