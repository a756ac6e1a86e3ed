package loadtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// setChildAttrs makes the kernel kill the child when the thread that started it goes away, so
// an interrupted benchmark leaves no `weft dev` behind.
func setChildAttrs(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

// ownGroup makes the child lead a process group of its own, which the processes it forks
// (nginx's workers) join: killGroup then ends them all, even once their parent is gone (the
// kernel's parent-death signal reaches only the child itself).
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// killGroup sends SIGKILL to the process group pid leads (see ownGroup).
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

// childPIDs lists the processes pid has started that are still running (nginx's workers).
func childPIDs(pid int) ([]int, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	var out []int
	for _, f := range strings.Fields(string(data)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("loadtest: /proc/%d/task/%d/children: %q", pid, pid, data)
		}
		out = append(out, n)
	}
	return out, nil
}

func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }

// procStatusBytes reads a "kB" field of /proc/<pid>/status (VmRSS, VmHWM, …) in bytes.
func procStatusBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		num, unit, _ := strings.Cut(strings.TrimSpace(rest), " ")
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || unit != "kB" {
			return 0, fmt.Errorf("loadtest: /proc/%d/status %s: %q", pid, field, rest)
		}
		return n << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	return 0, fmt.Errorf("loadtest: /proc/%d/status has no %s", pid, field)
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// ProcessCPU returns the user and system CPU time a process has used so far, from
// /proc/<pid>/stat (10ms resolution).
func ProcessCPU(pid int) (user, system time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("loadtest: %w", err)
	}
	// The command name (field 2) may hold spaces: count the fields after its parenthesis.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("loadtest: /proc/%d/stat: unexpected %q", pid, data)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("loadtest: /proc/%d/stat: unexpected %q", pid, data)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("loadtest: /proc/%d/stat: unexpected %q", pid, data)
	}
	return time.Duration(utime) * time.Second / userHZ, time.Duration(stime) * time.Second / userHZ, nil
}

// SelfCPU returns the user plus system CPU time this process has used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RaiseFileLimit raises this process's soft limit on open files to its hard limit and returns
// the limit now in force. (Go already does this at start-up since 1.19; doing it here says so
// and reports the figure.)
func RaiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("loadtest: getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("loadtest: setrlimit: %w", err)
		}
	}
	return lim.Cur, nil
}

// FileLimit returns the soft limit on open files of a process, from /proc/<pid>/limits.
func FileLimit(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if f[0] == "unlimited" {
					return 1 << 62, nil
				}
				return strconv.ParseUint(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("loadtest: /proc/%d/limits has no open files limit", pid)
}

// MachineCPU returns the CPU time the whole machine has spent busy (not idle nor waiting for
// I/O) so far, over all CPUs, from /proc/stat. Compared with a process's, it shows what other
// load shared the machine during a measurement.
func MachineCPU() (time.Duration, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("loadtest: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, fmt.Errorf("loadtest: /proc/stat is empty: %v", sc.Err())
	}
	fields := strings.Fields(sc.Text()) // cpu user nice system idle iowait irq softirq steal …
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, fmt.Errorf("loadtest: /proc/stat: unexpected %q", sc.Text())
	}
	var busy int64
	for i, v := range fields[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: /proc/stat: unexpected %q", sc.Text())
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// nicedCommand runs bin at the given nice value, through nice(1): nice is per thread on Linux,
// and a thread inherits it from the thread that starts it, so it must be set before the Go
// runtime of the child starts its threads. idle runs it under SCHED_IDLE instead, through
// chrt(1): it then runs only on CPU time no other process wants, and any other process that
// wakes up takes the CPU from it at once (a nice 19 process still gets a share, and under
// EEVDF a waking process may wait for its slice).
func nicedCommand(nice int, idle bool, bin string, args ...string) (*exec.Cmd, error) {
	if idle {
		path, err := exec.LookPath("chrt")
		if err != nil {
			return nil, fmt.Errorf("loadtest: running under SCHED_IDLE: %w", err)
		}
		return exec.Command(path, append([]string{"--idle", "0", bin}, args...)...), nil
	}
	if nice == 0 {
		return exec.Command(bin, args...), nil
	}
	path, err := exec.LookPath("nice")
	if err != nil {
		return nil, fmt.Errorf("loadtest: running at nice %d: %w", nice, err)
	}
	return exec.Command(path, append([]string{"-n", strconv.Itoa(nice), bin}, args...)...), nil
}
