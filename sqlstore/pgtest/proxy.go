package pgtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Proxy passes PostgreSQL connections through to a server, and loses one
// of them at a chosen point of a transaction's COMMIT, as a network or a
// killed backend would. It reads the simple query protocol only: clients
// must connect with default_query_exec_mode=simple_protocol (URL does).
type Proxy struct {
	// URL is the database URL through the proxy, in simple protocol.
	URL string

	ln     net.Listener
	target string

	mu    sync.Mutex
	trap  *trap
	conns []net.Conn
}

// trap is one armed loss: the next transaction that sends a query
// containing match loses its connection at its COMMIT.
type trap struct {
	match     string
	committed bool // forward the COMMIT and let the server answer first
	sprung    chan struct{}
}

// NewProxy listens on a loopback port in front of the database at dbURL
// (a URL of NewDatabase); it stops when the test ends.
func NewProxy(tb testing.TB, dbURL string) *Proxy {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host}
	q := u.Query()
	q.Set("default_query_exec_mode", "simple_protocol")
	u.Host, u.RawQuery = ln.Addr().String(), q.Encode()
	p.URL = u.String()
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// LoseCommit arms the proxy: the connection of the next transaction that
// sends a query containing match is lost at its COMMIT. With committed,
// the COMMIT reaches the server and the server answers (the transaction
// commits) before the connection is lost, the answer never delivered;
// without, the COMMIT never reaches the server (it rolls back). The
// returned channel closes when the loss has happened.
func (p *Proxy) LoseCommit(match string, committed bool) <-chan struct{} {
	t := &trap{match: match, committed: committed, sprung: make(chan struct{})}
	p.mu.Lock()
	p.trap = t
	p.mu.Unlock()
	return t.sprung
}

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.serve(c, s)
	}
}

// serve pumps one connection: the server's messages back as they come,
// the client's one at a time, watching its queries.
func (p *Proxy) serve(client, server net.Conn) {
	defer client.Close()
	defer server.Close()
	answered := make(chan struct{}, 1) // the server sent something while held
	var held sync.Mutex                // held: the server's answers are dropped
	holding := false
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				held.Lock()
				h := holding
				held.Unlock()
				if h {
					select {
					case answered <- struct{}{}:
					default:
					}
				} else if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				select { // a held COMMIT the server answered by closing
				case answered <- struct{}{}:
				default:
				}
				client.Close()
				return
			}
		}
	}()
	// The startup message has no type byte.
	if err := pass(client, server, false, nil); err != nil {
		return
	}
	var armed *trap
	for {
		var msg []byte
		if err := pass(client, nil, true, &msg); err != nil {
			return
		}
		if msg[0] == 'Q' {
			query := strings.ToLower(string(bytes.TrimRight(msg[5:], "\x00")))
			p.mu.Lock()
			if armed == nil && p.trap != nil && strings.Contains(query, strings.ToLower(p.trap.match)) {
				armed, p.trap = p.trap, nil
			}
			p.mu.Unlock()
			if armed != nil && strings.TrimSpace(query) == "commit" {
				if armed.committed {
					held.Lock()
					holding = true
					held.Unlock()
					if _, err := server.Write(msg); err == nil {
						<-answered
					}
				}
				close(armed.sprung) // before the client can see the loss
				client.Close()
				server.Close()
				return
			}
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// pass reads one message from r: with a type byte when typed. It writes
// it to w when w is set, else hands it back in out.
func pass(r io.Reader, w io.Writer, typed bool, out *[]byte) error {
	head := 4
	if typed {
		head = 5
	}
	msg := make([]byte, head)
	if _, err := io.ReadFull(r, msg); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(msg[head-4:]))
	if n < 4 || n > 1<<30 {
		return fmt.Errorf("message length %d", n)
	}
	msg = append(msg, make([]byte, n-4)...)
	if _, err := io.ReadFull(r, msg[head:]); err != nil {
		return err
	}
	if w != nil {
		_, err := w.Write(msg)
		return err
	}
	*out = msg
	return nil
}
