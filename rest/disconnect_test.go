package rest_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keylens/keylens/rest"
	"github.com/keylens/keylens/sqlstore"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClientThatHalfClosesIsNot5xx: a client that sends a complete admin
// request and then closes its side of the connection (which net/http
// takes as the client gone, cancelling the request) is answered 499, as
// nginx counts it, logged at info, never a 5xx or an ERROR line.
func TestClientThatHalfClosesIsNot5xx(t *testing.T) {
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var log syncBuffer
	api, err := rest.NewServer(rest.Config{Developers: db, Catalogue: db, Keys: db, Changes: db, Credentials: db, Hits: db,
		Tokens: db, TokenAdmin: db, AdminKeyHash: sha256.Sum256([]byte("admin")),
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	statuses := map[int]int{}
	for i := range 20 {
		body := fmt.Sprintf(`{"email":"half-%d@example.com","password":"a-long-password"}`, i)
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /api/portal/developers HTTP/1.1\r\nHost: x\r\nAuthorization: admin\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		conn.(*net.TCPConn).CloseWrite()
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			statuses[res.StatusCode]++
			res.Body.Close()
		} else {
			statuses[0]++ // closed without an answer
		}
		conn.Close()
	}
	for status := range statuses {
		if status >= 500 {
			t.Errorf("half-closing clients were answered %v, want no 5xx", statuses)
		}
	}
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("half-closing clients logged errors:\n%s", log.String())
	}
	t.Logf("statuses: %v", statuses)
}
