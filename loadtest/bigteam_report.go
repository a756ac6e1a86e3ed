package loadtest

import (
	"fmt"
	"slices"
	"time"
)

// bigTeamRow is one figure of the bigteam table: how to read it from a server's run, how to
// print it, and the target as a ratio of weft's median to centrifuge's (0: none).
type bigTeamRow struct {
	name   string
	get    func(*BigTeamServer) float64
	format func(float64) string
	target float64
}

var bigTeamRows = []bigTeamRow{
	{"idle RSS per session", func(s *BigTeamServer) float64 { return s.IdleBytesPerConn }, bytesIEC, 0},
	{"paced: publish-to-receive p50 (ms)", func(s *BigTeamServer) float64 { return s.Paced.P50 }, ms, 0},
	{"paced: publish-to-receive p99 (ms)", func(s *BigTeamServer) float64 { return s.Paced.P99 }, ms, 0.5},
	{"paced: floor for the last recipient (ms)", func(s *BigTeamServer) float64 { return s.FloorMS }, ms, 0},
	{"paced: server CPU per delivery (µs)", func(s *BigTeamServer) float64 { return s.PacedServerNS / 1e3 }, us, 0},
	{"paced: client CPU per delivery (µs)", func(s *BigTeamServer) float64 { return s.PacedClientNS / 1e3 }, us, 0},
	{"paced: users.info p50 (ms)", func(s *BigTeamServer) float64 { return s.Probe.P50 }, ms, 0},
	{"paced: users.info p99 (ms)", func(s *BigTeamServer) float64 { return s.Probe.P99 }, ms, 0},
	{"burst: server CPU per delivery (µs)", func(s *BigTeamServer) float64 { return s.ServerNSPerDeliv / 1e3 }, us, 0.6},
	{"burst: client CPU per delivery (µs)", func(s *BigTeamServer) float64 { return s.ClientNSPerDeliv / 1e3 }, us, 0},
	{"burst: deliveries per second", func(s *BigTeamServer) float64 { return s.DeliveriesPerSec }, thousands, 0},
	{"idle: server CPU (ms per s)", func(s *BigTeamServer) float64 { return s.ServerCPUAtIdleMS }, ms, 0},
}

func us(v float64) string { return fmt.Sprintf("%.2f", v) }

func thousands(v float64) string { return fmt.Sprintf("%.0fk", v/1e3) }

// spread is a figure over the runs: median (min–max).
func spread(vs []float64, format func(float64) string) (median float64, s string) {
	if len(vs) == 0 {
		return 0, ""
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	median = vs[len(vs)/2]
	if len(vs)%2 == 0 {
		median = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	if len(vs) == 1 {
		return median, format(median)
	}
	return median, fmt.Sprintf("%s (%s–%s)", format(median), format(vs[0]), format(vs[len(vs)-1]))
}

// BigTeamReport is the bigteam scenario's report: each figure per server as the median of the
// runs with their range, and weft's median over centrifuge's beside the target.
func BigTeamReport(f *BigTeamFigures, workload, command string) *Report {
	r := &Report{Scenario: "bigteam", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	var servers []string
	if len(f.Runs) > 0 {
		for _, s := range f.Runs[0] {
			servers = append(servers, s.Server)
		}
	}
	header := append([]string{"figure"}, servers...)
	compare := slices.Contains(servers, "weft") && slices.Contains(servers, "centrifuge")
	if compare {
		header = append(header, "weft ÷ centrifuge", "target")
	}
	r.Table = [][]string{header}
	for _, row := range bigTeamRows {
		line := []string{row.name}
		medians := map[string]float64{}
		for i, name := range servers {
			var vs []float64
			for _, run := range f.Runs {
				if i < len(run) {
					vs = append(vs, row.get(&run[i]))
				}
			}
			m, s := spread(vs, row.format)
			medians[name] = m
			line = append(line, s)
		}
		if compare {
			ratio, target := "", ""
			if c := medians["centrifuge"]; c > 0 {
				ratio = fmt.Sprintf("%.2f×", medians["weft"]/c)
			}
			if row.target > 0 {
				target = fmt.Sprintf("≤ %.1f×", row.target)
			}
			line = append(line, ratio, target)
		}
		r.Table = append(r.Table, line)
	}
	r.Notes = []string{
		fmt.Sprintf("each figure: the median of %d runs (lowest–highest); each run starts each server afresh, weft first", len(f.Runs)),
		fmt.Sprintf("sessions: %d cheap clients (read frames, find the stamp, decode nothing else) in worker processes at nice 10, and %d probers in the load generator", f.Sessions, f.Probers),
		fmt.Sprintf("paced: %d team-wide events, one a second, each to every session and prober; latency from the publish request (weft: the origin's admin API, then NATS; centrifuge: straight into its node) to the client's read", f.Paced),
		fmt.Sprintf("floor: deliveries per event × (server + client CPU per delivery in the paced phase) ÷ %d cores: no server delivers to its last recipient sooner on this machine; the server's CPU is less what the probers cost it, measured for 3 s alone before", f.Cores),
		fmt.Sprintf("burst: %d team-wide events published at once; CPU per delivery is the server process's (weft: the whole `weft dev`, origin and NATS included) and the clients' over the burst", f.Burst),
		"idle RSS per session: the server's RSS with every session connected, less its RSS with only the probers, over the sessions",
	}
	return r
}
