package proxy

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler serves /metrics and /healthz.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case p.draining.Load():
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
		case !p.router.synced.Load():
			http.Error(w, "no slot table from topom yet", http.StatusServiceUnavailable)
		case p.router.fenced.Load() || (p.router.leaseLive != nil && !p.router.leaseLive()):
			http.Error(w, "fenced: lease with topom ran out, waiting to re-sync", http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, "serving revision %d\n", p.router.revision.Load())
		}
	})
	return mux
}
