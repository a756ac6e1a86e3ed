// Package pgtest runs a real PostgreSQL server for tests: Debian's initdb and postgres in a
// temporary directory, on a loopback port, as processes a test can stop, restart and kill.
// Tests only. Start gives a test a server of its own; Shared gives every test of a binary the
// same server, each test with its own database (CreateDB). A binary that uses Shared stops it
// from TestMain, with the usual leak check after it:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }
//
// The server trades durability against an operating system crash for speed (fsync=off), not
// against a process crash: every acknowledged commit survives Stop, Restart and Kill.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/weft-edge/weft/internal/testkit"
)

// User is the superuser initdb creates; clients connect as it, without a password.
const User = "weft"

// ReadyWithin bounds a start: initdb (about a second) and the wait until the server accepts
// connections, on a busy 2-core machine under the race detector.
const ReadyWithin = 60 * time.Second

// stopWithin bounds a fast shutdown (SIGINT) before the server is killed instead.
const stopWithin = 30 * time.Second

// settings are the server's -c options. fsync=off is safe against a killed process (the
// kernel still writes what was written); synchronous_commit and full_page_writes keep their
// defaults, so that no acknowledged commit is lost and no page torn when Kill crashes the
// server (a commit without them is no faster measurably once fsync is off).
var settings = []string{"listen_addresses=127.0.0.1", "fsync=off", "max_connections=200", "shared_buffers=128MB"}

// Server is one PostgreSQL server. Its port and data directory stay the same across
// restarts. Methods may be called from any goroutine; Start, Stop, Restart and Kill wait for
// each other.
type Server struct {
	port    int
	binary  string              // postgres
	dir     string              // holds data/, sock/ and postgres.log; readable by the server's user
	data    string              // the data directory, symlinks resolved: its processes' cwd
	cred    *syscall.Credential // whom the server runs as; nil: this process's user
	logPath string
	shared  bool
	startup string // how long initdb and the first start took, for the log

	mu   sync.Mutex    // guards cmd, done and gone
	cmd  *exec.Cmd     // the postmaster; nil when stopped
	done chan struct{} // closed once cmd has exited and been waited for
	gone bool          // Stop removed the directory: the server cannot start again
}

// Start starts a server for t alone, stopped and removed when t ends.
func Start(t testkit.T) *Server {
	t.Helper()
	s, err := start()
	if s != nil {
		t.Cleanup(func() {
			if l, ok := t.(interface{ Failed() bool }); ok && l.Failed() {
				logf(t, "pgtest: server log:\n%s", s.logTail())
			}
			s.Stop()
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	logf(t, "%s", s.startup)
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns the server every test of this binary shares, starting it for the first
// test that asks; a failed start fails that test and every later one, with the same error.
// RunMain stops it. A test that stops, restarts or kills a server starts its own.
func Shared(t testkit.T) *Server {
	t.Helper()
	first := false
	shared.once.Do(func() {
		first = true
		if shared.s, shared.err = start(); shared.s != nil {
			shared.s.shared = true
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	if first {
		logf(t, "%s", shared.s.startup)
	}
	return shared.s
}

// RunMain runs a package's tests, stops the shared server, if one was started, and then
// fails the run if goroutines are left behind, ignoring testkit.LeakOptions(extra...) (so
// extra cannot hold goleak.Cleanup). It returns the exit code for os.Exit.
func RunMain(m *testing.M, extra ...goleak.Option) int {
	code := m.Run()
	if shared.s != nil {
		shared.s.Stop()
	}
	if code == 0 {
		if err := goleak.Find(testkit.LeakOptions(extra...)...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}

// DSN is the URL a client connects to database db with.
func (s *Server) DSN(db string) string {
	u := url.URL{Scheme: "postgres", User: url.User(User), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// CreateDB creates database name and returns its DSN. The shared server drops it when t
// ends, so that a test run again (-count) can create it again; names must differ among the
// tests that run at the same time.
func (s *Server) CreateDB(t testkit.T, name string) string {
	t.Helper()
	ident := pgx.Identifier{name}.Sanitize()
	testkit.OK(t, s.exec("CREATE DATABASE "+ident))
	if s.shared {
		t.Cleanup(func() {
			if err := s.exec("DROP DATABASE " + ident + " WITH (FORCE)"); err != nil {
				t.Errorf("pgtest: dropping database %s: %v", name, err)
			}
		})
	}
	return s.DSN(name)
}

// exec runs one statement on database postgres, on a connection of its own.
func (s *Server) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyWithin)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("pgtest: %s: %w", sql, err)
	}
	return nil
}

// Start starts the server again after Kill, on its port and data directory; PostgreSQL
// recovers from its write-ahead log. It waits until the server accepts connections.
func (s *Server) Start(t testkit.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	testkit.OK(t, s.launch())
}

// Restart stops the server with a fast shutdown (SIGINT: open sessions are ended, commits
// are kept) and starts it again on the same port, waiting until it accepts connections.
func (s *Server) Restart(t testkit.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.halt(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	testkit.OK(t, s.launch())
}

// Kill crashes the server: SIGKILL to the postmaster, then to whichever of its processes
// outlive it (each notices its parent's death, but a busy one only later). It returns once
// all are gone, so that Start can take the data directory.
func (s *Server) Kill(t testkit.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.halt(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// Stop shuts the server down (fast shutdown; SIGKILL after 30 s) and removes its directory.
// It may be called more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return
	}
	_ = s.halt(syscall.SIGINT) // the directory goes anyway, and with it whatever was left
	s.gone = true
	_ = os.RemoveAll(s.dir)
}

// logf logs to t when t can log (testkit.T need not).
func logf(t testkit.T, format string, args ...any) {
	t.Helper()
	if l, ok := t.(interface{ Logf(string, ...any) }); ok {
		l.Logf(format, args...)
	}
}
