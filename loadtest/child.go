package loadtest

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// child is a process this package started: a weft server (Stack, Proc) or a client worker.
// Only its arguments configure it (the WEFT_ environment twins of this process's flags do not
// leak in), it is killed if this process dies (on Linux), and one goroutine reads its stdout
// to the end, so that it never blocks on a full pipe, then waits for its exit.
type child struct {
	name    string // for errors
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error // set before exited is closed
	stop    sync.Once
	// group: the child leads a process group (ownGroup) whose other members are stopped with
	// it: nginx's workers outlive a master that was killed.
	group bool
}

// startChild starts cmd, its stderr to stderr, and hands its stdout to read on the goroutine
// that then discards what read left and waits for the exit. A cmd.Env already set is the
// caller's and kept as it is.
func startChild(name string, cmd *exec.Cmd, stderr io.Writer, read func(stdout io.Reader)) (*child, error) {
	c := &child{name: name, cmd: cmd, exited: make(chan struct{})}
	if cmd.Env == nil {
		cmd.Env = withoutWeftEnv(os.Environ())
	}
	cmd.Stderr = stderr
	setChildAttrs(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("loadtest: %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: starting %s: %w", name, err)
	}
	go func() {
		read(stdout)
		_, _ = io.Copy(io.Discard, stdout)
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// PID is the child's process ID.
func (c *child) PID() int { return c.cmd.Process.Pid }

// Exited is closed when the child has exited.
func (c *child) Exited() <-chan struct{} { return c.exited }

// Kill sends SIGKILL (a crash, as in the seed talk's incident) and waits for the exit.
func (c *child) Kill() {
	c.stop.Do(func() { _ = c.cmd.Process.Kill() })
	<-c.exited
	if c.group {
		killGroup(c.PID())
	}
}

// terminate asks the child to stop (SIGTERM: a server drains), kills it if it has not exited
// within grace, and waits for the exit; the error says it had to be killed.
func (c *child) terminate(grace time.Duration) error {
	var err error
	c.stop.Do(func() {
		_ = terminate(c.cmd.Process)
		select {
		case <-c.exited:
		case <-time.After(grace):
			_ = c.cmd.Process.Kill()
			err = fmt.Errorf("loadtest: %s did not stop within %v of SIGTERM: killed", c.name, grace)
		}
	})
	<-c.exited
	if c.group {
		killGroup(c.PID())
	}
	return err
}
