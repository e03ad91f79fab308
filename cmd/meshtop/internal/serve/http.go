package serve

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshtop/meshtop/data/store"
)

// observer holds the process's own series: build info, leadership, the
// scheduler's refreshes and the SSH sessions.
type observer struct {
	build     *prometheus.GaugeVec
	refreshes *prometheus.CounterVec
	sessions  *prometheus.GaugeVec
	refused   *prometheus.CounterVec
}

func newObserver(cfg Config) *observer {
	o := &observer{
		// Not "instance": Prometheus's own target label.
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshtop_build_info", Help: "Always 1; the labels say which meshtop build serves (version, commit) and the --instance name it runs as (instance_name).",
		}, []string{"version", "commit", "instance_name"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshtop_scheduler_refreshes_total", Help: "Refresh attempts of the view that this process's schedule ran as leader since it started, by outcome (ok, failed, skipped).",
		}, []string{"view", "outcome"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshtop_ssh_sessions", Help: "SSH dashboard sessions open now, by role (viewer, operator).",
		}, []string{"role"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshtop_ssh_refused_total", Help: "SSH connections and sessions turned away since this process started, by reason: before login (max_startups, max_per_source, login_grace, no_session) or after (max_sessions, command, no_pty).",
		}, []string{"reason"}),
	}
	o.build.WithLabelValues(cfg.Version, cfg.Commit, cfg.Instance).Set(1)
	for _, v := range store.ViewNames() {
		for _, out := range []string{"ok", "failed", "skipped"} {
			o.refreshes.WithLabelValues(v, out)
		}
	}
	for _, r := range []string{"viewer", "operator"} {
		o.sessions.WithLabelValues(r)
	}
	for _, r := range []string{"max_sessions", "command", "no_pty"} {
		o.refused.WithLabelValues(r)
	}
	return o
}

func (o *observer) refreshed(res []store.RefreshResult, err error) {
	for _, r := range res {
		o.refreshes.WithLabelValues(r.View, r.Status).Inc()
	}
}

// registry gathers the exporter, the process's own series and Go's.
func (s *Server) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		s.exp,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.obs.build, s.obs.refreshes, s.obs.sessions, s.obs.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshtop_scheduler_interval_seconds", Help: "The --refresh-every interval this process campaigns for the leader lock with (0: it does not refresh).",
		}, func() float64 { return s.cfg.RefreshEvery.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "meshtop_scheduler_leader", Help: "1 while this process holds the leader lock and refreshes the views (0 also without --refresh-every).",
		}, func() float64 {
			if s.sched == nil {
				return 0
			}
			if ok, _ := s.sched.Leader(); ok {
				return 1
			}
			return 0
		}),
	)
	return reg
}

// httpServer serves GET /metrics, /healthz and /readyz and nothing else:
// nothing on HTTP writes.
func (s *Server) httpServer() *http.Server {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(s.registry(), promhttp.HandlerOpts{
		ErrorLog: promLogger{s}, ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 8, Timeout: 30 * time.Second,
	})
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: meshtop serve's HTTP endpoints only read", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(`<html><head><title>meshtop</title></head><body><h1>meshtop serve</h1><p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></p></body></html>` + "\n"))
			return
		}
		http.NotFound(w, r)
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	return s.http
}

// readyz answers 200 when the database is reachable and meshtop's views are
// installed (read through the hub: probes cost at most one catalog read per
// interval), else 503 with the reason.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ok, err := s.hub.Installed(ctx)
	switch {
	case err != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: the database is not reachable\n"))
		s.log.Warn("readyz: database not reachable", "err", err)
	case !ok:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: meshtop's views are not installed (run meshtop install)\n"))
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}

type promLogger struct{ s *Server }

func (l promLogger) Println(v ...any) {
	l.s.log.Warn("metrics: serving a scrape", "err", v)
}
