package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/weft-edge/weft/loadtest"
)

// regionsSpawn is the regions scenario's default --spawn-args: three regions, the far ones 80
// and 150 ms away from home (issue 19's figures).
const regionsSpawn = "--regions 3 --wan-rtt 80ms,150ms"

var regionsScenario = scenario{name: "regions", size: "32k",
	summary: "Edge regions (`weft dev --regions`): query and publish-to-deliver latency of each region's\n" +
		"clients, near their own region and then across the WAN to the home region, and the team's\n" +
		"cold load in each region; then the farthest region's edges are killed under its clients (weft dev's\n" +
		"control endpoint): time until every client is served again elsewhere, and back home once new edges\n" +
		"start, with changes lost or duplicated. Always spawns its stack (--spawn-args: the regions and round trips).",
	flags: func(fs *flag.FlagSet) scenarioRun {
		var c loadtest.RegionsConfig
		// The scenario needs a stack of its own with regions: --spawn on, and the regions in
		// --spawn-args, unless the command line says otherwise.
		_ = fs.Set("spawn", "true")
		_ = fs.Set("spawn-args", regionsSpawn)
		fs.IntVar(&c.Clients, "clients", 20, "clients per region and phase, and of the killed region (each a different user)")
		fs.Float64Var(&c.Rate, "rate", 50, "queries per second per region")
		fs.DurationVar(&c.Duration, "duration", 15e9, "how long each phase's queries last")
		fs.IntVar(&c.Events, "events", 50, "team-wide events (user_change) published per phase")
		fs.Float64Var(&c.EventRate, "event-rate", 10, "events published per second")
		coldSizes := fs.String("cold-sizes", "", "more worlds (e.g. giant) whose team's cold load to time in every region, each on a stack of its own after the run")
		return func(ctx context.Context, t *loadtest.Target, o *targetOpts) (*loadtest.Report, error) {
			c.Progress = o.progressTo()
			f, err := loadtest.RunRegions(ctx, t, c)
			if err != nil {
				return nil, err
			}
			for i := range f.Cold {
				f.Cold[i].Size = o.size
			}
			for _, size := range strings.Split(*coldSizes, ",") {
				if size = strings.TrimSpace(size); size == "" {
					continue
				}
				cold, err := regionsCold(ctx, o, size)
				if err != nil {
					return nil, fmt.Errorf("--cold-sizes %s: %w", size, err)
				}
				f.Cold = append(f.Cold, cold...)
			}
			return loadtest.RegionsReport(f, fmt.Sprintf("team %s (%s world), %d clients per region and phase, %.0f queries/s per region for %v, %d events at %.0f/s per phase; `weft dev --size %s %s` spawned",
				f.Team, o.size, c.Clients, c.Rate, c.Duration, c.Events, c.EventRate, o.size, o.spawnArgs), "")
		}
	}}

// regionsCold spawns a stack of world size with the run's regions and times its team's cold
// load in each region.
func regionsCold(ctx context.Context, o *targetOpts, size string) ([]loadtest.ColdLoad, error) {
	bin, err := weftBinary(o.weft)
	if err != nil {
		return nil, err
	}
	t, err := loadtest.Spawn(ctx, bin, os.Stderr, append([]string{"--size", size}, strings.Fields(o.spawnArgs)...)...)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	cold, err := loadtest.RunRegionsCold(ctx, t)
	for i := range cold {
		cold[i].Size = size
	}
	return cold, err
}
