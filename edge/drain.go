package edge

import (
	"context"
	"net/http"
	"time"
)

// drainMargin is what a drain asked on the operator listener may take beyond the drain
// spread: the sessions' own closes, and the pre-warming of their teams' next owners.
const drainMargin = 30 * time.Second

// handleDrain is POST /drain on the operator listener: the drain a stop would do (Shutdown:
// the edge leaves the ring, its sessions move to their teams' next owners, pre-warmed),
// answered once it is done. It is a Kubernetes preStop hook's (`weft drain`): the pod is
// drained before its SIGTERM, whose own drain then finds nothing left. The process keeps
// running, not ready, until it is stopped. The drain goes on if the caller leaves.
func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
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
