// Package version is what a weft binary knows of its own build, from the Go build info the
// toolchain stamps into it (runtime/debug.ReadBuildInfo): `weft version` prints it and every
// process exports it as the weft_build_info metric, so that a fleet's versions can be seen,
// and a skew during a rolling upgrade alerted on.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set with -ldflags "-X github.com/weft-edge/weft/internal/version.stampVersion=v1.2.3
// -X github.com/weft-edge/weft/internal/version.stampCommit=<sha>" by builds the go command
// cannot stamp itself: a container build whose context has no .git, or GOFLAGS=-buildvcs=false.
var stampVersion, stampCommit string

// Info is a binary's build.
type Info struct {
	// Version is the module's version: a tag (v1.2.3), a pseudo-version, or "(devel)" for a
	// binary built inside its own checkout.
	Version string
	// Commit is the VCS revision the binary was built from ("" when the build was not stamped:
	// go run, go test, or -buildvcs=false); Modified: the tree had uncommitted changes.
	Commit   string
	Modified bool
	Time     string // commit time, RFC 3339
	Go       string // the toolchain, runtime.Version()
	Platform string // GOOS/GOARCH
}

// Read is this binary's Info.
func Read() Info {
	info := Info{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			case "vcs.time":
				info.Time = s.Value
			}
		}
	}
	if stampVersion != "" {
		info.Version = stampVersion
	}
	if info.Commit == "" {
		info.Commit = stampCommit
	}
	return info
}

// ShortCommit is the first 12 hex digits of the commit, marked "-dirty" when modified; ""
// when unknown.
func (i Info) ShortCommit() string {
	c := i.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	if c != "" && i.Modified {
		c += "-dirty"
	}
	return c
}

// String is the line `weft version` prints.
func (i Info) String() string {
	commit := i.ShortCommit()
	if commit == "" {
		commit = "unknown"
	}
	s := fmt.Sprintf("%s (commit %s", i.Version, commit)
	if i.Time != "" {
		s += ", " + i.Time
	}
	return s + ", " + i.Go + " " + i.Platform + ")"
}

// Collector is the weft_build_info metric of this binary: always 1, its build in the labels.
func Collector() prometheus.Collector {
	i := Read()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "weft_build_info",
		Help:        "Always 1: the build of this weft process, in its labels (a fleet with two versions is a rolling upgrade, or one forgotten).",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.ShortCommit(), "go_version": i.Go},
	}, func() float64 { return 1 })
}
