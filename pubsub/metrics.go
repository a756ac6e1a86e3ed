package pubsub

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the Bus's feed counters and FeedStatus as Prometheus metrics, read at
// scrape time (the counters are the Bus's own atomics: nothing is counted twice). The edge
// registers it next to its own metrics.
func (b *Bus) Collector() prometheus.Collector { return busCollector{b} }

type busCollector struct{ b *Bus }

var (
	feedCounterDescs = []struct {
		desc *prometheus.Desc
		get  func(*Stats) uint64
	}{
		{prometheus.NewDesc("weft_feed_events_published_total", "Events stored in the stream by this process (the origin side).", nil, nil),
			func(s *Stats) uint64 { return s.Published }},
		{prometheus.NewDesc("weft_feed_events_received_total", "Live messages taken off team subscriptions.", nil, nil),
			func(s *Stats) uint64 { return s.Received }},
		{prometheus.NewDesc("weft_feed_events_delivered_total", "Events handed to the team caches, live or fetched from the stream; each seq once.", nil, nil),
			func(s *Stats) uint64 { return s.Delivered }},
		{prometheus.NewDesc("weft_feed_events_fetched_total", "Events read from the JetStream stream to fill gaps (after a reconnect, a dropped message, a NATS outage).", nil, nil),
			func(s *Stats) uint64 { return s.Filled }},
		{prometheus.NewDesc("weft_feed_duplicates_total", "Messages dropped as already delivered.", nil, nil),
			func(s *Stats) uint64 { return s.Duplicates }},
		{prometheus.NewDesc("weft_feed_bad_messages_total", "Messages that did not decode or belonged to another team, skipped.", nil, nil),
			func(s *Stats) uint64 { return s.BadMessages }},
		{prometheus.NewDesc("weft_feed_gaps_detected_total", "Gaps found in a team's feed: a jump in seq, or a tail the stream holds and the subscription missed.", nil, nil),
			func(s *Stats) uint64 { return s.Gaps }},
		{prometheus.NewDesc("weft_feed_gaps_filled_total", "Gaps filled from the stream before newer events were applied.", nil, nil),
			func(s *Stats) uint64 { return s.GapsFilled }},
		{prometheus.NewDesc("weft_feed_gaps_unfillable_total", "Gaps the stream no longer held: each made its team reload from the origin.", nil, nil),
			func(s *Stats) uint64 { return s.Lost }},
		{prometheus.NewDesc("weft_feed_fallback_reads_total", "Gap fills and replays that read the fallback domain's stream (the hub's, across the WAN) because the regional mirror lagged or lacked an event.", nil, nil),
			func(s *Stats) uint64 { return s.FallbackReads }},
		{prometheus.NewDesc("weft_feed_fill_retries_total", "JetStream errors while filling a gap, each retried with backoff.", nil, nil),
			func(s *Stats) uint64 { return s.FillRetries }},
	}
	feedSubsDesc = prometheus.NewDesc("weft_feed_subscriptions",
		"Team subscriptions open.", nil, nil)
	feedNoFeedDesc = prometheus.NewDesc("weft_feed_teams_without_feed",
		"Team subscriptions following no feed: NATS was lost, or the hub's heartbeat stopped (a region cut off), and they have not caught up from the stream since. Their teams are served from cache, stale.", nil, nil)
	feedLagMaxDesc = prometheus.NewDesc("weft_feed_lag_max",
		"Feed lag in seq: the most events one team subscription has heard of (live, or the end of a gap it is filling) and not yet applied.", nil, nil)
	feedLagSumDesc = prometheus.NewDesc("weft_feed_lag_sum",
		"Feed lag in seq, summed over team subscriptions.", nil, nil)
)

func (c busCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range feedCounterDescs {
		ch <- d.desc
	}
	ch <- feedSubsDesc
	ch <- feedNoFeedDesc
	ch <- feedLagMaxDesc
	ch <- feedLagSumDesc
}

func (c busCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.b.Stats()
	for _, d := range feedCounterDescs {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(&st)))
	}
	fs := c.b.FeedStatus()
	ch <- prometheus.MustNewConstMetric(feedSubsDesc, prometheus.GaugeValue, float64(fs.Subscriptions))
	ch <- prometheus.MustNewConstMetric(feedNoFeedDesc, prometheus.GaugeValue, float64(fs.WithoutFeed))
	ch <- prometheus.MustNewConstMetric(feedLagMaxDesc, prometheus.GaugeValue, float64(fs.LagMax))
	ch <- prometheus.MustNewConstMetric(feedLagSumDesc, prometheus.GaugeValue, float64(fs.LagSum))
}
