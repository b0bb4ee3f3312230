// Package metrics exposes the importer to Prometheus: Asynq's queue metrics
// (from asynq's x/metrics collector) and the importer's own — rows by
// outcome, API requests by endpoint and status, API latency, write
// resolution time, rate-limit waits and 429s.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	asynqmetrics "github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/propexo-importer/importer/importer"
)

// Metrics holds the importer's series, in a registry of their own.
type Metrics struct {
	reg        *prometheus.Registry
	rows       *prometheus.CounterVec
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	resolution prometheus.Histogram
	waits      prometheus.Counter
	limited    prometheus.Counter
}

// New returns the metrics. With an inspector, Asynq's queue metrics are
// served too.
func New(inspector *asynq.Inspector) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "importer_rows_resolved_total", Help: "Rows that reached an outcome, by outcome.",
		}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "importer_api_requests_total", Help: "Requests to the write API, by endpoint and HTTP status (\"error\" when no answer came).",
		}, []string{"endpoint", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "importer_api_request_duration_seconds", Help: "Time the write API took to answer, by endpoint.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		resolution: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "importer_write_resolution_seconds", Help: "Time from a write's submit to the status check that found it resolved.",
			Buckets: prometheus.ExponentialBuckets(0.5, 2, 14),
		}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "importer_rate_limit_waits_total", Help: "Tasks rescheduled to wait for the shared rate limit.",
		}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "importer_api_rate_limited_total", Help: "Answers 429 from the write API.",
		}),
	}
	m.reg.MustRegister(m.rows, m.requests, m.latency, m.resolution, m.waits, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if inspector != nil {
		m.reg.MustRegister(asynqmetrics.NewQueueMetricsCollector(inspector))
	}
	for _, o := range importer.Outcomes {
		m.rows.WithLabelValues(string(o)) // every outcome shows, at 0
	}
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// RowResolved counts a row's outcome.
func (m *Metrics) RowResolved(o importer.Outcome) { m.rows.WithLabelValues(string(o)).Inc() }

// WriteResolved observes a write's resolution time.
func (m *Metrics) WriteResolved(d time.Duration) { m.resolution.Observe(d.Seconds()) }

// RateLimitWait counts a wait for the rate limit.
func (m *Metrics) RateLimitWait() { m.waits.Inc() }

// observe records one API request.
func (m *Metrics) observe(endpoint string, began time.Time, err error) {
	m.latency.WithLabelValues(endpoint).Observe(time.Since(began).Seconds())
	status := "200"
	var apiErr *importer.APIError
	switch {
	case err == nil:
	case errors.As(err, &apiErr) && apiErr.Status != 0:
		status = strconv.Itoa(apiErr.Status)
		if apiErr.Status == http.StatusTooManyRequests {
			m.limited.Inc()
		}
	default:
		status = "error"
	}
	m.requests.WithLabelValues(endpoint, status).Inc()
}

// API wraps a write API so that every request is counted and timed.
func (m *Metrics) API(inner importer.WriteAPI) importer.WriteAPI { return api{inner: inner, m: m} }

type api struct {
	inner importer.WriteAPI
	m     *Metrics
}

var _ importer.WriteAPI = api{}

func (a api) CreateResident(ctx context.Context, v importer.Vendor, r importer.Resident) (string, error) {
	began := time.Now()
	id, err := a.inner.CreateResident(ctx, v, r)
	a.m.observe(importer.EndpointCreate, began, err)
	return id, err
}

func (a api) WriteStatus(ctx context.Context, jobID string) (importer.WriteStatus, error) {
	began := time.Now()
	st, err := a.inner.WriteStatus(ctx, jobID)
	a.m.observe(importer.EndpointWriteStatus, began, err)
	return st, err
}

func (a api) GetResident(ctx context.Context, id string) (importer.ResidentRecord, error) {
	began := time.Now()
	rec, err := a.inner.GetResident(ctx, id)
	a.m.observe(importer.EndpointGetResident, began, err)
	return rec, err
}

func (a api) RetryWrite(ctx context.Context, jobID string) (string, error) {
	began := time.Now()
	id, err := a.inner.RetryWrite(ctx, jobID)
	a.m.observe(importer.EndpointRetryWrite, began, err)
	return id, err
}

func (a api) FindResidents(ctx context.Context, q importer.ResidentQuery) ([]importer.ResidentRecord, error) {
	began := time.Now()
	recs, err := a.inner.FindResidents(ctx, q)
	a.m.observe(importer.EndpointListResidents, began, err)
	return recs, err
}

func (a api) UpdateResident(ctx context.Context, id string, fields map[string]string) (string, error) {
	began := time.Now()
	jobID, err := a.inner.UpdateResident(ctx, id, fields)
	a.m.observe(importer.EndpointUpdate, began, err)
	return jobID, err
}

func (a api) ListResidents(ctx context.Context, scope importer.ListScope, offset int) ([]importer.ResidentRecord, bool, int, error) {
	began := time.Now()
	page, more, total, err := a.inner.ListResidents(ctx, scope, offset)
	a.m.observe(importer.EndpointListResidents, began, err)
	return page, more, total, err
}
