package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// errNoPostgres says what to install: a test that needs PostgreSQL fails without it, rather
// than skip and pass unseen.
var errNoPostgres = errors.New("pgtest: no PostgreSQL server (initdb and postgres) under " +
	"/usr/lib/postgresql/*/bin or on PATH: install Debian's postgresql package " +
	"(apt-get install postgresql; .ci/run does)")

// start makes a new data directory and starts a server on it, on a free port. A server it
// returns with an error is to be stopped (its directory removed).
func start() (*Server, error) {
	initdb, postgres, err := binaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverUser()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its directories are 0700, which the server's user could not enter.
	dir, err := os.MkdirTemp("", "weft-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{binary: postgres, dir: dir, cred: cred, logPath: filepath.Join(dir, "postgres.log")}
	if err := s.prepare(); err != nil {
		return s, err
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyWithin)
	defer cancel()
	cmd := s.command(ctx, initdb, "-D", s.data, "-A", "trust", "-U", User, "--no-sync", "-E", "UTF8", "--locale=C")
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if out, err := cmd.CombinedOutput(); err != nil {
		return s, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	initialized := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	// Two processes may pick the same free port: the loser picks again.
	for range 10 {
		if s.port, err = freePort(); err != nil {
			return s, err
		}
		if err = s.launchOnce(); !errors.Is(err, errPortTaken) {
			break
		}
	}
	if err != nil {
		return s, err
	}
	s.startup = fmt.Sprintf("pgtest: %s ready on 127.0.0.1:%d in %v (initdb %v, start %v)", postgres, s.port,
		time.Since(begin).Round(time.Millisecond), initialized.Sub(begin).Round(time.Millisecond),
		time.Since(initialized).Round(time.Millisecond))
	return s, nil
}

// prepare makes the directories the server's user writes (data/, sock/) and checks that it
// can reach them: postgres runs as nobody when this process is root, which it refuses to
// run as.
func (s *Server) prepare() error {
	if err := os.Chmod(s.dir, 0o755); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	real, err := filepath.EvalSymlinks(s.dir)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.data = filepath.Join(real, "data")
	// postgres wants its data directory closed to others; the socket's may be open.
	for d, mode := range map[string]os.FileMode{s.data: 0o700, filepath.Join(real, "sock"): 0o755} {
		if err := os.Mkdir(d, mode); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if s.cred != nil {
			if err := os.Chown(d, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	if s.cred == nil {
		return nil
	}
	for d := real; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pgtest: %s (mode %v) is closed to user %d, whom postgres runs as: "+
				"set TMPDIR to a directory everyone may enter", d, fi.Mode().Perm(), s.cred.Uid)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// binaries finds initdb and postgres: Debian installs each major version under
// /usr/lib/postgresql/<major>/bin, and the newest is taken; else they are looked for on PATH.
func binaries() (initdb, postgres string, err error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best := -1.0
	for _, p := range found {
		bin := filepath.Dir(p)
		major, err := strconv.ParseFloat(filepath.Base(filepath.Dir(bin)), 64) // 15; 9.6 once
		if _, statErr := os.Stat(filepath.Join(bin, "postgres")); err == nil && statErr == nil && major > best {
			best, initdb, postgres = major, p, filepath.Join(bin, "postgres")
		}
	}
	if best >= 0 {
		return initdb, postgres, nil
	}
	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 != nil || err2 != nil {
		return "", "", errNoPostgres
	}
	return initdb, postgres, nil
}

// serverUser is whom initdb and postgres run as: nobody when this process is root (as in
// CI), since both refuse to run as root; nil, this process's user, otherwise.
func serverUser() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	uid, gid := uint64(65534), uint64(65534) // Debian's nobody and nogroup
	if u, err := user.Lookup("nobody"); err == nil {
		u1, err1 := strconv.ParseUint(u.Uid, 10, 32)
		g1, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			uid, gid = u1, g1
		}
	}
	if uid == 0 {
		return nil, errors.New("pgtest: user nobody is root")
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// freePort is a TCP port on 127.0.0.1 that no one listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
