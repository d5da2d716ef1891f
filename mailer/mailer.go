// Package mailer sends keylens's emails (the developer portal's password
// reset links): over SMTP when --smtp-url is set, otherwise to the log,
// clearly marked, so that a development setup works on its own.
package mailer

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// Message is a plain-text email to one recipient.
type Message struct {
	To, Subject, Body string
}

// Sender sends messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// New returns the sender --smtp-url and --mail-from describe: SMTP when
// smtpURL is set, the log otherwise.
func New(smtpURL, from string, logger *slog.Logger) (Sender, error) {
	if smtpURL == "" {
		return &Log{Logger: logger}, nil
	}
	return NewSMTP(smtpURL, from)
}

// Log writes messages to the log instead of sending them: for development
// only, since the body (a reset link) is then in the log.
type Log struct{ Logger *slog.Logger }

// Send logs m, marked as an email that was not sent.
func (l *Log) Send(_ context.Context, m Message) error {
	l.Logger.Warn("EMAIL NOT SENT (no --smtp-url): written to this log instead", "to", m.To, "subject", m.Subject, "body", m.Body)
	return nil
}

// SMTP sends through an SMTP server: smtp://user:pass@host:port uses
// STARTTLS when the server offers it (and refuses to send the password
// unencrypted to a host other than the local one); smtps:// speaks TLS from
// the start.
type SMTP struct {
	Addr       string // host:port
	Host       string
	Implicit   bool // smtps://
	User, Pass string
	From       string
	// TLSConfig verifies the server; nil uses the system's roots and Host.
	TLSConfig *tls.Config
	// Timeout bounds a whole send; 30 seconds when zero.
	Timeout time.Duration
}

// NewSMTP parses an smtp:// or smtps:// URL. The port defaults to 587
// (smtp) or 465 (smtps).
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") || (u.Path != "" && u.Path != "/") {
		return nil, errors.New("--smtp-url: want smtp://[user:pass@]host[:port] or smtps://…")
	}
	if _, err := mail.ParseAddress(from); err != nil || from == "" || strings.ContainsAny(from, "\r\n") {
		return nil, fmt.Errorf("--mail-from %q is not an email address", from)
	}
	s := &SMTP{Host: u.Hostname(), Implicit: u.Scheme == "smtps", From: from}
	port := u.Port()
	if port == "" {
		port = "587"
		if s.Implicit {
			port = "465"
		}
	}
	s.Addr = net.JoinHostPort(s.Host, port)
	if u.User != nil {
		s.User = u.User.Username()
		s.Pass, _ = u.User.Password()
	}
	return s, nil
}

// Send delivers m.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if strings.ContainsAny(m.To+m.Subject, "\r\n") {
		return errors.New("mailer: a header holds a line break")
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("mailer: recipient: %w", err)
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	tlsConfig := s.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
	}
	if s.Implicit {
		conn = tls.Client(conn, tlsConfig)
	}
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok && !s.Implicit {
		if err := c.StartTLS(tlsConfig); err != nil {
			return fmt.Errorf("mailer: STARTTLS: %w", err)
		}
	}
	if s.User != "" {
		// PlainAuth refuses an unencrypted connection to any host but
		// the local one.
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Pass, s.Host)); err != nil {
			return fmt.Errorf("mailer: AUTH: %w", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return fmt.Errorf("mailer: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		return fmt.Errorf("mailer: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("mailer: DATA: %w", err)
	}
	if _, err := w.Write(s.compose(m, to.Address)); err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("mailer: %w", err)
	}
	return c.Quit()
}

// compose writes the message: headers, then the body quoted-printable.
func (s *SMTP) compose(m Message, to string) []byte {
	var b bytes.Buffer
	host := s.Host
	if i := strings.LastIndex(s.From, "@"); i >= 0 {
		host = strings.Trim(s.From[i+1:], ">")
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.keylens@%s>\r\n",
		s.From, to, mime.QEncoding.Encode("utf-8", m.Subject), time.Now().Format(time.RFC1123Z), time.Now().UnixNano(), host)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}
