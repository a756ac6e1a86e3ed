//go:build !linux

package loadtest

import (
	"errors"
	"os"
	"os/exec"
	"time"
)

// The memory and CPU figures come from /proc: only Linux has them. The stack itself runs
// anywhere.

var errNoProc = errors.New("loadtest: needs Linux's /proc")

func setChildAttrs(*exec.Cmd) {}

func ownGroup(*exec.Cmd) {}

func killGroup(int) {}

func childPIDs(int) ([]int, error) { return nil, errNoProc }

func terminate(p *os.Process) error { return p.Signal(os.Interrupt) }

func procStatusBytes(int, string) (int64, error) { return 0, errNoProc }

// ProcessCPU needs Linux.
func ProcessCPU(int) (user, system time.Duration, err error) { return 0, 0, errNoProc }

// SelfCPU needs Linux; it returns 0 elsewhere.
func SelfCPU() time.Duration { return 0 }

// RaiseFileLimit needs Linux.
func RaiseFileLimit() (uint64, error) { return 0, errNoProc }

// FileLimit needs Linux.
func FileLimit(int) (uint64, error) { return 0, errNoProc }

// MachineCPU needs Linux.
func MachineCPU() (time.Duration, error) { return 0, errNoProc }

// nicedCommand ignores nice and idle off Linux.
func nicedCommand(_ int, _ bool, bin string, args ...string) (*exec.Cmd, error) {
	return exec.Command(bin, args...), nil
}
