package loadtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Report is what one scenario run measured: the table printed on the terminal, the figures
// behind it (written as JSON), and the plots (PNG) beside it.
type Report struct {
	Scenario string    `json:"scenario"`
	At       time.Time `json:"at"`
	// Command reproduces the run.
	Command string `json:"command"`
	// Workload says what was run, in words: "200 users of T00000000 (32k world), 8 at a time".
	Workload string `json:"workload"`
	// Table is the headline: a header row, then rows.
	Table [][]string `json:"table"`
	// Figures is the scenario's own figures struct.
	Figures any `json:"figures"`
	// Plots are the PNG files written, relative to the report's directory.
	Plots []string `json:"plots,omitempty"`
	// Notes are what a reader must know to read the table right.
	Notes []string `json:"notes,omitempty"`

	plots []pendingPlot
}

type pendingPlot struct {
	file string
	p    *plot.Plot
}

// Print writes the report as an aligned table, for the terminal.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\n%s: %s\n", r.Scenario, r.Workload)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, row := range r.Table {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// Markdown is the table as a Markdown table.
func (r *Report) Markdown() string {
	var b strings.Builder
	for i, row := range r.Table {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if i == 0 {
			b.WriteString(strings.Repeat("| --- ", len(row)) + "|\n")
		}
	}
	return b.String()
}

// Write writes <scenario>.json and the plots into dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r.Plots = r.Plots[:0]
	for _, pp := range r.plots {
		if err := pp.p.Save(8*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, pp.file)); err != nil {
			return fmt.Errorf("loadtest: plot %s: %w", pp.file, err)
		}
		r.Plots = append(r.Plots, pp.file)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, r.Scenario+".json"), append(b, '\n'), 0o644)
}

// addPlot keeps p to be written as file by Write. A plot with nothing to show (errNoData)
// is left out and said in the notes; other errors are returned.
func (r *Report) addPlot(file string, p *plot.Plot, err error) error {
	if errors.Is(err, errNoData) {
		r.Notes = append(r.Notes, file+": not drawn, nothing was measured")
		return nil
	}
	if err != nil {
		return err
	}
	r.plots = append(r.plots, pendingPlot{file, p})
	return nil
}

// errNoData: a plot of nothing (every request failed); the report goes without it.
var errNoData = errors.New("loadtest: no latencies to plot")

// Series is one named line of a plot.
type Series struct {
	Name   string
	Points [][2]float64
}

// LatencyPlot draws latency distributions the way HDR histograms are read: the x axis is the
// percentile, stretched toward the tail (50, 90, 99, 99.9 % equally apart), the y axis
// milliseconds on a log scale, so a distribution with a 1 ms median and a 200 ms tail shows
// both.
func LatencyPlot(title string, hists map[string]*Hist, order []string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	// x = log10(100/(100-q)): 50% → 0.3, 90% → 1, 99% → 2, 99.9% → 3.
	p.X.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0"}, {Value: math.Log10(2), Label: "50"},
		{Value: 1, Label: "90"}, {Value: 2, Label: "99"}, {Value: 3, Label: "99.9"}, {Value: 4, Label: "99.99"}}
	var args []any
	lo, hi := math.Inf(1), 0.0
	for _, name := range order {
		h := hists[name]
		if h == nil {
			continue
		}
		var xy plotter.XYs
		for _, pt := range h.Quantiles() {
			if pt[0] >= 100 {
				continue // the maximum sits at infinity on this axis; the table has it
			}
			y := max(pt[1], 0.001)
			lo, hi = min(lo, y), max(hi, y)
			xy = append(xy, plotter.XY{X: math.Log10(100 / (100 - pt[0])), Y: y})
		}
		args = append(args, name, xy)
	}
	if hi == 0 {
		return nil, errNoData
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, err
	}
	// Room above the lines for the legend (a decade per two series), and the x axis runs a
	// little past its last tick so that the label fits.
	p.Y.Min, p.Y.Max = lo/2, hi*math.Pow(10, float64(len(args)/2+1)/2)
	p.X.Min, p.X.Max = 0, 4.3
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// LinePlot draws series against a shared x axis.
func LinePlot(title, xLabel, yLabel string, series ...Series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	var args []any
	dense := false // a marker per point only where there are few of them
	for _, s := range series {
		xy := make(plotter.XYs, len(s.Points))
		for i, pt := range s.Points {
			xy[i] = plotter.XY{X: pt[0], Y: pt[1]}
		}
		args = append(args, s.Name, xy)
		dense = dense || len(xy) > 40
	}
	add := plotutil.AddLinePoints
	if dense {
		add = plotutil.AddLines
	}
	if err := add(p, args...); err != nil {
		return nil, err
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p, nil
}

// ms formats a duration in milliseconds for a table.
func ms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// bytesIEC formats a byte count: 1.5 KiB, 37.3 MiB.
func bytesIEC(b float64) string {
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if b < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%.0f B", b)
			}
			return fmt.Sprintf("%.1f %s", b, u)
		}
		b /= 1024
	}
	return ""
}
