package pgtest

// The postmaster's lives: each is started by launch and ended by halt, which also ends the
// processes it forked, so that no process outlives a Server.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// halt sends sig to the postmaster, if it runs, waits for it to exit (SIGKILL after
// stopWithin), then kills and waits for the processes that outlived it. s.mu is held.
func (s *Server) halt(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(sig) // an error means it has exited already: done says so
	timer := time.NewTimer(stopWithin)
	defer timer.Stop()
	var err error
	select {
	case <-s.done:
	case <-timer.C:
		err = fmt.Errorf("pgtest: server did not stop within %v of %v; killed\n%s", stopWithin, sig, s.logTail())
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
	deadline := time.Now().Add(stopWithin)
	for {
		left := s.orphans()
		if len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: processes %v outlived SIGKILL for %v", left, stopWithin)
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond) // SIGKILL is not refused: this waits for the exits
	}
}

// orphans lists the live processes whose working directory is the data directory: the
// server's, since the postmaster and every child it forks run there. A zombie has no working
// directory any more, nor a hold on the server's shared memory.
func (s *Server) orphans() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == s.data {
			pids = append(pids, pid)
		}
	}
	return pids
}

// launch starts the postmaster on s.port and waits until it accepts connections. A port
// taken meanwhile by another process is tried again for a while: it is a client's, soon
// gone, or this port was never free. s.mu is held.
func (s *Server) launch() error {
	if s.gone {
		return errors.New("pgtest: server stopped for good")
	}
	if s.cmd != nil {
		return errors.New("pgtest: server already running")
	}
	var err error
	for range 20 {
		if err = s.launchOnce(); !errors.Is(err, errPortTaken) {
			return err
		}
		time.Sleep(100 * time.Millisecond) // another process holds the port: give it time to let go
	}
	return err
}

var errPortTaken = errors.New("pgtest: port taken")

// launchOnce starts the postmaster and waits until it accepts connections, or exits, which
// it does at once when the port is taken (errPortTaken). s.mu is held.
func (s *Server) launchOnce() error {
	out, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer out.Close() // the server has its own copy
	fi, _ := out.Stat()
	from := fi.Size() // this life's log begins here
	args := []string{"-D", s.data, "-k", filepath.Join(s.dir, "sock"), "-p", strconv.Itoa(s.port)}
	for _, set := range settings {
		args = append(args, "-c", set)
	}
	cmd := s.command(context.Background(), s.binary, args...)
	// SIGQUIT, an immediate shutdown that ends the server's children too, if this test
	// binary dies without stopping it (a timeout's panic).
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	done := make(chan struct{})
	go func() { // owned by s: every halt waits for done
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	ctx, cancel := context.WithTimeout(context.Background(), ReadyWithin)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(pctx, s.DSN("postgres"))
		pcancel()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-done:
			s.cmd, s.done = nil, nil
			life := s.logFrom(from)
			if strings.Contains(life, "could not create any TCP/IP sockets") {
				return fmt.Errorf("%w: %d", errPortTaken, s.port)
			}
			return fmt.Errorf("pgtest: postgres exited while starting; its log:\n%s", life)
		case <-ctx.Done():
			_ = s.halt(syscall.SIGKILL)
			return fmt.Errorf("pgtest: postgres not accepting connections within %v: %v; its log:\n%s", ReadyWithin, err, s.logFrom(from))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// command runs bin as the server's user, in s.dir, in the C locale (whose messages launch
// reads).
func (s *Server) command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// logTail is the end of the server's log, every life's output one after the other.
func (s *Server) logTail() string {
	fi, err := os.Stat(s.logPath)
	if err != nil {
		return err.Error()
	}
	return s.logFrom(max(0, fi.Size()-8<<10))
}

func (s *Server) logFrom(off int64) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, off, 8<<10))
	return string(b)
}
