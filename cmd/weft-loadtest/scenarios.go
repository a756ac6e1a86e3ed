package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-edge/weft/internal/token"
	"github.com/weft-edge/weft/loadtest"
)

// targetOpts are the flags the scenarios share: the stack to drive (given by URL, or started
// for the run with --spawn, from the weft binary --weft), the team, where the report goes and
// how long the run may take.
type targetOpts struct {
	target, metrics, origin, originToken, secret string
	spawn                                        bool
	size, spawnArgs, weft, postgres              string
	team, out                                    string
	timeout                                      time.Duration
	progress                                     bool
}

// flags adds the shared flags to fs; size is the scenario's default world, and its report
// goes to results/<scenario> unless --out says otherwise.
func (o *targetOpts) flags(fs *flag.FlagSet, scenario, size string) {
	fs.StringVar(&o.target, "target", "", "http://host:port of a running edge or proxy that clients connect to (or --spawn)")
	fs.StringVar(&o.metrics, "metrics", "", "http://host:port of the edge's operator listener (its --ops-addr), whose /metrics to read (default: --target, which serves none)")
	fs.StringVar(&o.origin, "origin", "", "http://host:port of the origin behind --target (its listings and admin endpoints: the reference origin, or weft origin --postgres)")
	fs.StringVar(&o.originToken, "origin-token", "", "the origin's service token, if it has one")
	fs.StringVar(&o.secret, "token-secret", token.DevSecret, "token secret the target verifies client tokens with")
	fs.BoolVar(&o.spawn, "spawn", false, "start a `weft dev` stack for the run (in a child process) instead of --target")
	fs.StringVar(&o.size, "size", size, "with --spawn: the origin's world (small, 32k, giant, …)")
	fs.StringVar(&o.spawnArgs, "spawn-args", "", "with --spawn: more flags for `weft dev`, space-separated")
	fs.StringVar(&o.postgres, "postgres", "", "with --spawn: PostgreSQL URL of the origin on PostgreSQL to run instead of the synthetic world (weft dev --postgres: migrated, and seeded with --size when it has no team yet)")
	fs.StringVar(&o.weft, "weft", "", "with --spawn: the weft binary to run; empty: the weft next to this executable, else weft on PATH")
	fs.StringVar(&o.team, "team", "", "the team to load (default with --spawn: the world's first)")
	fs.StringVar(&o.out, "out", "results/"+scenario, "directory for the report (<scenario>.json and PNG plots), relative to the working directory; empty: terminal only")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "the run stops after this, whatever it is doing")
	fs.BoolVar(&o.progress, "progress", true, "print a progress line every 2s on stderr")
}

func (o *targetOpts) open(ctx context.Context, stderr io.Writer) (*loadtest.Target, error) {
	if o.spawn == (o.target != "") {
		return nil, errors.New("want one of --target URL (with --origin) or --spawn")
	}
	if o.spawn {
		bin, err := weftBinary(o.weft)
		if err != nil {
			return nil, err
		}
		args := []string{"--size", o.size}
		if o.postgres != "" {
			args = append(args, "--postgres", o.postgres)
		}
		return loadtest.Spawn(ctx, bin, stderr, append(args, strings.Fields(o.spawnArgs)...)...)
	}
	if o.origin == "" {
		return nil, errors.New("--target needs --origin: the scenarios read the world from the reference origin")
	}
	return loadtest.NewTarget(o.target, o.metrics, o.origin, o.originToken, o.secret)
}

func (o *targetOpts) progressTo() io.Writer {
	if o.progress {
		return os.Stderr
	}
	return nil
}

// where says what the run was against, for the workload line.
func (o *targetOpts) where(t *loadtest.Target) string {
	if o.spawn && o.postgres != "" {
		return fmt.Sprintf("`weft dev --size %s --postgres` spawned (one edge; the origin on PostgreSQL)", o.size)
	}
	if o.spawn {
		return fmt.Sprintf("`weft dev --size %s` spawned (one edge)", o.size)
	}
	return "target " + t.URL
}

// scenario is one weft-loadtest scenario: its flags, and a run that returns its report.
type scenario struct {
	name, summary, size string
	flags               func(fs *flag.FlagSet) scenarioRun
}

// scenarioRun runs a scenario against t, with the flags its scenario.flags added, and returns
// its report.
type scenarioRun func(ctx context.Context, t *loadtest.Target, o *targetOpts) (*loadtest.Report, error)

// flagSet makes sc's flag set: the shared target flags (size: the default world) and its own,
// which run reads once fs is parsed.
func (sc *scenario) flagSet(size string) (fs *flag.FlagSet, o *targetOpts, run scenarioRun) {
	fs, o = weftLoadtest.NewFlagSet(sc.name, sc.summary), new(targetOpts)
	o.flags(fs, sc.name, size)
	return fs, o, sc.flags(fs)
}

var scenarios = []scenario{bootScenario, queryScenario, typingScenario, fanoutScenario, capacityScenario, regionsScenario}

func findScenario(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

// runScenario parses the scenario's flags, runs it bounded by --timeout, prints its table and
// writes its report.
func runScenario(ctx context.Context, sc *scenario, args []string, stdout io.Writer) error {
	fs, o, run := sc.flagSet(sc.size)
	if _, err := weftLoadtest.ParseLogged(fs, args, stdout); err != nil {
		return err
	}
	r, err := runOne(ctx, sc, run, o, "weft-loadtest "+sc.name+" "+strings.Join(args, " "))
	if err != nil {
		return err
	}
	r.Print(stdout)
	if o.out == "" {
		return nil
	}
	if err := r.Write(o.out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  report: %s\n", filepath.Join(o.out, sc.name+".json"))
	return nil
}

func runOne(ctx context.Context, sc *scenario, run scenarioRun, o *targetOpts, command string) (*loadtest.Report, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("stopped by --timeout %v", o.timeout))
	defer cancel()
	t, err := o.open(ctx, os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.name, err)
	}
	defer t.Close()
	if o.team == "" && !o.spawn {
		return nil, fmt.Errorf("%s: --team is needed with --target", sc.name)
	}
	r, err := run(ctx, t, o)
	if err != nil {
		if ctx.Err() != nil { // the deadline that fired: this run's --timeout, or its caller's
			return nil, fmt.Errorf("%s: %v: %w", sc.name, context.Cause(ctx), err)
		}
		return nil, fmt.Errorf("%s: %w", sc.name, err)
	}
	r.Command = strings.TrimSpace(command)
	return r, nil
}

var bootScenario = scenario{name: "boot", size: "32k",
	summary: "N users of a team boot: weft's lazy boot (WebSocket, hello, boot) against the eager baseline\n" +
		"(the whole team snapshot from the origin, parsed): time to ready and bytes per client.",
	flags: func(fs *flag.FlagSet) scenarioRun {
		var c loadtest.BootConfig
		fs.IntVar(&c.Users, "users", 200, "users booting lazily, each a different active user")
		fs.IntVar(&c.Eager, "eager", 0, "users booting from the team snapshot (0: min(--users, 20))")
		fs.IntVar(&c.Parallel, "parallel", 1, "clients booting at once (1: every client has the machine to itself, as each device has its own CPU)")
		return func(ctx context.Context, t *loadtest.Target, o *targetOpts) (*loadtest.Report, error) {
			c.Team, c.Progress = o.team, o.progressTo()
			f, err := loadtest.RunBoot(ctx, t, c)
			if err != nil {
				return nil, err
			}
			return loadtest.BootReport(f, fmt.Sprintf("%d lazy and %d eager boots of team %s, %d at a time; %s",
				f.Lazy.Clients, f.Eager.Clients, f.Team, max(c.Parallel, 1), o.where(t)), ""), nil
		}
	}}

var queryScenario = scenario{name: "query", size: "small",
	summary: "A mix of users.info, channels.members and users.channels at a fixed rate, asked of the edge\n" +
		"and of the origin (given a latency, standing in for the main region) in the same run.",
	flags: func(fs *flag.FlagSet) scenarioRun {
		var c loadtest.QueryConfig
		fs.IntVar(&c.Sessions, "sessions", 50, "client sessions asking the edge")
		fs.Float64Var(&c.Rate, "rate", 300, "requests per second to the edge")
		fs.Float64Var(&c.OriginRate, "origin-rate", 60, "requests per second to the origin")
		fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long the load runs")
		fs.DurationVar(&c.OriginLatency, "origin-latency", 200*time.Millisecond, "latency the reference origin is given for the run (negative: leave it; the origin on PostgreSQL has none to give, and --postgres makes the default -1)")
		return func(ctx context.Context, t *loadtest.Target, o *targetOpts) (*loadtest.Report, error) {
			c.Team, c.Progress = o.team, o.progressTo()
			if o.postgres != "" {
				if weftLoadtest.Given(fs, "origin-latency") && c.OriginLatency > 0 {
					return nil, errors.New("--origin-latency: the origin on PostgreSQL has no fault injection to add latency with")
				}
				c.OriginLatency = -1
			}
			f, err := loadtest.RunQuery(ctx, t, c)
			if err != nil {
				return nil, err
			}
			return loadtest.QueryReport(f, fmt.Sprintf("team %s, %d sessions; %.0f/s to the edge and %.0f/s to the origin for %v; origin latency %v; %s",
				f.Team, c.Sessions, c.Rate, c.OriginRate, c.Duration, c.OriginLatency, o.where(t)), "")
		}
	}}

var typingScenario = scenario{name: "typing", size: "32k",
	summary: "Users type names into the Quick Switcher, one autocomplete per keystroke, at human speed and\n" +
		"faster: latency per keystroke, and whether the name typed came up.",
	flags: func(fs *flag.FlagSet) scenarioRun {
		var c loadtest.TypingConfig
		fs.IntVar(&c.Sessions, "sessions", 20, "users typing at once")
		fs.IntVar(&c.Words, "words", 10, "names each types, per speed")
		speeds := fs.String("speeds", "150ms,50ms,0s", "times between keystrokes, comma-separated (0: each after the previous answer)")
		return func(ctx context.Context, t *loadtest.Target, o *targetOpts) (*loadtest.Report, error) {
			for _, s := range strings.Split(*speeds, ",") {
				d, err := time.ParseDuration(strings.TrimSpace(s))
				if err != nil || d < 0 {
					return nil, fmt.Errorf("--speeds: %q is not a duration ≥ 0", s)
				}
				c.Speeds = append(c.Speeds, d)
			}
			c.Team, c.Progress = o.team, o.progressTo()
			f, err := loadtest.RunTyping(ctx, t, c)
			if err != nil {
				return nil, err
			}
			return loadtest.TypingReport(f, fmt.Sprintf("team %s, %d users typing %d names each at every speed; %s",
				f.Team, c.Sessions, c.Words, o.where(t)), "")
		}
	}}

var fanoutScenario = scenario{name: "fanout", size: "32k",
	summary: "Live activity on a team with C connected clients: publish-to-deliver latency, deliveries per\n" +
		"second, and events into the edge against what one subscription per connection would carry.",
	flags: func(fs *flag.FlagSet) scenarioRun {
		var c loadtest.FanoutConfig
		fs.IntVar(&c.Sessions, "sessions", 1000, "connected sessions of the team (clients of the Go client package, in this process)")
		fs.Float64Var(&c.Rate, "rate", 10, "team-wide events (user_change) published per second")
		fs.IntVar(&c.Events, "events", 200, "events published in all")
		return func(ctx context.Context, t *loadtest.Target, o *targetOpts) (*loadtest.Report, error) {
			c.Team, c.Progress = o.team, o.progressTo()
			f, err := loadtest.RunFanout(ctx, t, c)
			if err != nil {
				return nil, err
			}
			return loadtest.FanoutReport(f, fmt.Sprintf("team %s, %d sessions, %d user_change events at %.0f/s; %s",
				f.Team, c.Sessions, c.Events, c.Rate, o.where(t)), "")
		}
	}}

var capacityScenario = scenario{name: "capacity", size: "32k",
	summary: "Ramp idle and then active connections on one edge (clients in worker processes): memory per\n" +
		"connection, CPU per 1,000 deliveries, queries per core, and where latency starts to bend.",
	flags: func(fs *flag.FlagSet) scenarioRun {
		var c loadtest.CapacityConfig
		steps := fs.String("steps", "2000,4000,6000,8000,10000", "idle connection counts to ramp through")
		rates := fs.String("rates", "1,2,5,10,20", "team-wide events per second of the active steps (each to every connection)")
		fs.DurationVar(&c.StepFor, "step", 10*time.Second, "how long each active step and the query step last")
		fs.IntVar(&c.PerWorker, "per-worker", 5000, "most clients per worker process")
		return func(ctx context.Context, t *loadtest.Target, o *targetOpts) (*loadtest.Report, error) {
			var err error
			if c.Steps, err = parseList(*steps, func(s string) (int, error) {
				var n int
				_, err := fmt.Sscan(s, &n)
				return n, err
			}); err != nil {
				return nil, fmt.Errorf("--steps: %w", err)
			}
			if c.Rates, err = parseList(*rates, func(s string) (float64, error) {
				var v float64
				_, err := fmt.Sscan(s, &v)
				return v, err
			}); err != nil {
				return nil, fmt.Errorf("--rates: %w", err)
			}
			if c.WorkerBin, err = workerBinary(); err != nil {
				return nil, err
			}
			c.Team, c.Progress, c.Stderr = o.team, o.progressTo(), os.Stderr
			f, err := loadtest.RunCapacity(ctx, t, c)
			if err != nil {
				return nil, err
			}
			return loadtest.CapacityReport(f, fmt.Sprintf("team %s; idle steps %s; active %s events/s each to every connection for %v; %s",
				f.Team, *steps, *rates, c.StepFor, o.where(t)), "")
		}
	}}

// parseList parses a comma-separated list of increasing positive numbers.
func parseList[T int | float64](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil || v <= 0 || (len(out) > 0 && v <= out[len(out)-1]) {
			return nil, fmt.Errorf("%q: want increasing positive numbers", s)
		}
		out = append(out, v)
	}
	return out, nil
}
