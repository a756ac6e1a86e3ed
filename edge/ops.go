package edge

// The operator's endpoints beyond /metrics (metrics.go) and /debug/teams: readiness with its
// reason, and the drain a preStop hook asks for.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/weft-edge/weft/protocol"
)

// drainMargin is what a drain asked on the operator listener may take beyond the drain
// spread: the sessions' own closes, and the pre-warming of their teams' next owners.
const drainMargin = 30 * time.Second

// handleDrain is POST /drain on the operator listener: the drain a stop would do (Shutdown:
// the edge leaves the ring, its sessions move to their teams' next owners, pre-warmed),
// answered once it is done. It is a Kubernetes preStop hook's (`weft drain`): the pod is
// drained before its SIGTERM, whose own drain then finds nothing left. The process keeps
// running, not ready, until it is stopped. The drain goes on if the caller leaves.
//
// Only from the edge's own host (loopback: the preStop hook runs in the pod) and with
// protocol.HeaderDrain: a drain cannot be undone but by a restart, so nothing else on the operators'
// network may ask for one.
func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	if !fromLoopback(r.RemoteAddr) || r.Header.Get(protocol.HeaderDrain) == "" {
		http.Error(w, "POST /drain is taken only from this host, with the "+protocol.HeaderDrain+" header (weft drain)", http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.DrainSpread+drainMargin)
	defer cancel()
	start := time.Now()
	s.log.Info("drain asked on the operator listener", "remote", r.RemoteAddr)
	if err := s.Shutdown(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
		return
	}
	w.Write([]byte("drained in " + time.Since(start).Round(time.Millisecond).String() + "\n"))
}

// fromLoopback reports whether a request's remote address is a loopback one.
func fromLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.readiness()
	if !ok {
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte(why + "\n"))
}

// readiness says whether the node takes new work, and why, for the operator.
func (s *Server) readiness() (bool, string) {
	switch {
	case s.draining.Load():
		return false, "draining"
	case s.admit.over(levelHigh):
		return false, "over the memory budget: " + s.Level()
	case s.cfg.Breaker != nil && s.cfg.Breaker.State() != "closed":
		// Still ready: warm teams are served, and every edge shares the origin, so sending
		// clients elsewhere would not help. Said for the operator.
		return true, fmt.Sprintf("ready (origin circuit %s: cold teams cannot load)", s.cfg.Breaker.State())
	}
	return true, "ready"
}
