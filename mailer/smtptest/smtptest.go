// Package smtptest runs a real SMTP server in process for tests
// (github.com/emersion/go-smtp) and keeps what it receives. Only tests
// import it.
package smtptest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Mail is a received message.
type Mail struct {
	From    string
	To      []string
	Subject string
	Body    string // decoded
	Raw     string
}

// Server is a running SMTP server on loopback.
type Server struct {
	Addr string
	// User and Pass, when set, are the only credentials AUTH PLAIN takes.
	User, Pass string
	mu         sync.Mutex
	mails      []Mail
	arrived    chan struct{}
}

// Start runs a server until the test ends; with tlsConfig it offers
// STARTTLS.
func Start(t testing.TB, tlsConfig *tls.Config) *Server { return start(t, tlsConfig, false) }

// StartImplicitTLS runs a server that speaks TLS from the first byte (an
// smtps:// server).
func StartImplicitTLS(t testing.TB, tlsConfig *tls.Config) *Server { return start(t, tlsConfig, true) }

func start(t testing.TB, tlsConfig *tls.Config, implicit bool) *Server {
	t.Helper()
	s := &Server{arrived: make(chan struct{}, 100)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = tlsConfig == nil
	if !implicit {
		srv.TLSConfig = tlsConfig
	}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	if implicit {
		ln = tls.NewListener(ln, tlsConfig)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

// Mails returns what arrived so far.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Wait returns the n-th message (from 1), waiting up to timeout for it.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) Mail {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if m := s.Mails(); len(m) >= n {
			return m[n-1]
		}
		select {
		case <-s.arrived:
		case <-deadline:
			t.Fatalf("no email #%d within %v (%d arrived)", n, timeout, len(s.Mails()))
		}
	}
}

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if x.s.User == "" || user != x.s.User || pass != x.s.Pass {
			return errors.New("invalid credentials")
		}
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error { x.from = from; return nil }
func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error   { x.to = append(x.to, to); return nil }
func (x *session) Reset()                                      { x.from, x.to = "", nil }
func (x *session) Logout() error                               { return nil }

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: x.from, To: x.to, Raw: string(raw)}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		m.Subject = msg.Header.Get("Subject")
		body := io.Reader(msg.Body)
		if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		b, _ := io.ReadAll(body)
		m.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	x.s.mu.Lock()
	x.s.mails = append(x.s.mails, m)
	x.s.mu.Unlock()
	select {
	case x.s.arrived <- struct{}{}:
	default:
	}
	return nil
}
