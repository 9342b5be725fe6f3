package main

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	events         *prometheus.CounterVec
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	produceSeconds prometheus.Histogram
	inflightBytes  prometheus.Gauge
	reloads        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	latency := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms … 16 s
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_collector_events_total",
			Help: "Events by source (workspace/source), outcome (accepted, rejected) and reason.",
		}, []string{"source", "outcome", "reason"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_collector_requests_total", Help: "Requests by call and HTTP status.",
		}, []string{"call", "status"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "firstparty_collector_request_duration_seconds", Help: "Time from request start to answer.", Buckets: latency,
		}, []string{"call"}),
		produceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "firstparty_collector_produce_duration_seconds", Help: "Time for Kafka to acknowledge one request's events (acks=all).", Buckets: latency,
		}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "firstparty_collector_inflight_bytes", Help: "Request body bytes currently held.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firstparty_collector_sources_reloads_total", Help: "Reloads of the sources file by outcome.",
		}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.requests, m.requestSeconds, m.produceSeconds, m.inflightBytes, m.reloads)
	}
	return m
}
