package loadtest

import (
	"fmt"
	"math"
	"time"
)

// The capacity scenario's figures: the steps it measured, what they add up to, and its report.

// CapacityStep is one point of the ramp.
type CapacityStep struct {
	Phase       string  `json:"phase"` // "idle", "active", "query"
	Connections int     `json:"connections"`
	EventsPerS  float64 `json:"events_per_s,omitempty"`
	// EventsSkipped were not published: 1,024 publishes were already waiting on the origin.
	EventsSkipped int64   `json:"events_skipped,omitempty"`
	RSSBytes      float64 `json:"rss_bytes"`
	// BytesPerConn is the RSS over the baseline (the team loaded, the probers connected),
	// divided by the connections the workers hold.
	BytesPerConn float64 `json:"bytes_per_conn,omitempty"`
	// Cores the edge process used during the step; ClientCores the worker processes (the
	// clients' side, on the same 2 cores).
	Cores       float64 `json:"cores"`
	ClientCores float64 `json:"client_cores"`
	// Saturated: in the step (and its 500 ms tail) the edge delivered less than 90% of what
	// was published times the connections.
	Saturated bool `json:"saturated,omitempty"`
	// SlowConsumers is the sessions the edge closed in the step because their queue was full
	// (their client read too slowly); they reconnect and resume.
	SlowConsumers float64 `json:"slow_consumer_closes,omitempty"`
	// Seconds the step was measured over (its load and the tail that lets the last events
	// arrive); every rate of the step is over it.
	Seconds float64 `json:"seconds"`
	// Deliveries during the step, counted by the clients that received them, per second, and
	// the edge's CPU per 1,000 of them.
	Deliveries      float64 `json:"deliveries,omitempty"`
	DeliveriesPerS  float64 `json:"deliveries_per_s,omitempty"`
	CPUPer1000MS    float64 `json:"cpu_ms_per_1000_deliveries,omitempty"`
	QueriesPerS     float64 `json:"queries_per_s,omitempty"`
	QueryErrors     int64   `json:"query_errors,omitempty"`
	QueriesPerCoreS float64 `json:"queries_per_core_s,omitempty"`
	// Probe is the probers' users.info round trips; Deliver their events' publish-to-deliver.
	Probe   Dist `json:"probe"`
	Deliver Dist `json:"deliver,omitempty"`
}

// CapacityFigures is what RunCapacity measured.
type CapacityFigures struct {
	Team        string          `json:"team"`
	BaselineRSS float64         `json:"baseline_rss_bytes"`
	Steps       []*CapacityStep `json:"steps"`
	// BytesPerConn is what one more idle connection costs: the slope of RSS over the idle
	// steps.
	BytesPerConn float64 `json:"bytes_per_idle_conn"`
	// Bend is where latency starts to bend (see bendOf). Empty when it did not.
	Bend string `json:"bend"`
}

// bendOf names the first idle or active step where latency bends: its users.info p99 more
// than twice the best idle step's (and 5 ms more: 1 → 2 ms is noise, not a bend), or, for an
// active step, its publish-to-deliver p99 likewise against the first active step's. The
// query step is left out: back to back is saturation by design.
func bendOf(steps []*CapacityStep) string {
	probe0, deliver0 := math.Inf(1), 0.0
	for _, s := range steps {
		if s.Phase == "idle" && s.Probe.N > 0 {
			probe0 = min(probe0, s.Probe.P99)
		}
	}
	bent := func(v, ref float64) bool { return ref > 0 && !math.IsInf(ref, 1) && v > 2*ref && v > ref+5 }
	for _, s := range steps {
		if deliver0 == 0 && s.Phase == "active" {
			deliver0 = s.Deliver.P99
		}
		what := ""
		switch {
		case s.Phase == "query":
			continue
		case bent(s.Probe.P99, probe0):
			what = fmt.Sprintf("users.info p99 %.1f ms (best idle step %.1f ms)", s.Probe.P99, probe0)
		case s.Phase == "active" && bent(s.Deliver.P99, deliver0):
			what = fmt.Sprintf("publish-to-deliver p99 %.1f ms (first active step %.1f ms)", s.Deliver.P99, deliver0)
		}
		if what != "" {
			return fmt.Sprintf("%s: %s", s.label(), what)
		}
	}
	return ""
}

// bytesPerConn is the slope of RSS over connections across the idle steps (least squares):
// what one more connection costs. The first connections partly reuse heap the team load
// freed, so RSS over the baseline divided by connections understates it; the slope does not.
func bytesPerConn(steps []*CapacityStep) float64 {
	var n, sx, sy, sxx, sxy float64
	for _, s := range steps {
		if s.Phase != "idle" {
			continue
		}
		x, y := float64(s.Connections), s.RSSBytes
		n, sx, sy, sxx, sxy = n+1, sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	if n < 2 || n*sxx == sx*sx {
		return 0
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

func (s *CapacityStep) label() string {
	switch s.Phase {
	case "active":
		return fmt.Sprintf("%d connections × %.0f events/s (%.0f deliveries/s)", s.Connections, s.EventsPerS, s.DeliveriesPerS)
	case "query":
		return fmt.Sprintf("%d connections, queries back to back", s.Connections)
	}
	return fmt.Sprintf("%d idle connections", s.Connections)
}

// CapacityReport is the capacity scenario's report.
func CapacityReport(f *CapacityFigures, workload, command string) (*Report, error) {
	r := &Report{Scenario: "capacity", At: time.Now().UTC(), Command: command, Workload: workload, Figures: f}
	r.Table = [][]string{{"step", "RSS", "per conn", "server cores", "client cores", "deliveries/s", "server CPU ms per 1,000 deliveries", "queries/s", "queries/s per server core", "users.info p99 (ms)", "deliver p99 (ms)"}}
	var memPts, probePts, deliverPts [][2]float64
	for _, s := range f.Steps {
		label := s.label()
		if s.Saturated {
			label += " (saturated)"
		}
		row := []string{label, bytesIEC(s.RSSBytes), "", fmt.Sprintf("%.2f", s.Cores), fmt.Sprintf("%.2f", s.ClientCores), "", "", "", "", ms(s.Probe.P99), ""}
		if s.Phase == "idle" {
			memPts = append(memPts, [2]float64{float64(s.Connections), s.RSSBytes / (1 << 20)})
		}
		if s.BytesPerConn > 0 { // at a few connections RSS can sit under the baseline (a collection)
			row[2] = bytesIEC(s.BytesPerConn)
		}
		if s.DeliveriesPerS > 0 && s.Phase == "active" { // elsewhere they are stragglers of the step before
			row[5], row[6] = fmt.Sprintf("%.0f", s.DeliveriesPerS), fmt.Sprintf("%.1f", s.CPUPer1000MS)
			if s.Saturated { // what it measured is the collapse, not a cost per delivery
				row[6] = "—"
			}
		}
		if s.Phase == "active" {
			row[10] = ms(s.Deliver.P99)
			probePts = append(probePts, [2]float64{s.DeliveriesPerS / 1000, s.Probe.P99})
			deliverPts = append(deliverPts, [2]float64{s.DeliveriesPerS / 1000, s.Deliver.P99})
		}
		if s.QueriesPerS > 0 {
			row[7], row[8] = fmt.Sprintf("%.0f", s.QueriesPerS), fmt.Sprintf("%.0f", s.QueriesPerCoreS)
		}
		r.Table = append(r.Table, row)
	}
	for _, s := range f.Steps {
		if s.SlowConsumers > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: the edge closed %.0f sessions as slow consumers (their clients could not keep up; they reconnect and resume)", s.label(), s.SlowConsumers))
		}
		if s.EventsSkipped > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d events not published (the origin fell behind)", s.label(), s.EventsSkipped))
		}
	}
	bend := f.Bend
	if bend == "" {
		bend = "none: no idle or active step's users.info p99 passed twice the best idle step's (and 5 ms more), nor its publish-to-deliver p99 twice the first active step's"
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("memory per idle connection: %s (the slope of RSS over the idle steps)", bytesIEC(f.BytesPerConn)),
		fmt.Sprintf("baseline RSS %s (the team loaded, the probers connected); per conn = (RSS − baseline) / connections, which understates: the first connections reuse heap the team load freed", bytesIEC(f.BaselineRSS)),
		"latency bends: "+bend,
		"saturated: the edge delivered under 90% of what was offered; the ramp stops there (each active step is followed by a drain, unmeasured)",
		"server: the process whose /metrics was read (with --spawn, the whole `weft dev`: edge, origin and embedded NATS)",
		"deliveries: events counted by the clients that received them",
		"the clients (Go client package, in worker processes at nice 10) share the machine's 2 cores with the server: server cores + client cores near 2 is the machine's limit, not the server's",
	)
	if len(memPts) > 1 {
		p, err := LinePlot("edge memory over idle connections", "idle connections", "RSS (MiB)", Series{"RSS", memPts})
		if err := r.addPlot("capacity-memory.png", p, err); err != nil {
			return nil, err
		}
	}
	if len(probePts) > 1 {
		p, err := LinePlot("latency over delivery load", "thousand deliveries per second", "p99 (ms)",
			Series{"users.info p99", probePts}, Series{"publish-to-deliver p99", deliverPts})
		if err := r.addPlot("capacity-latency.png", p, err); err != nil {
			return nil, err
		}
	}
	return r, nil
}
