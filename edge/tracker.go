package edge

import (
	"context"
	"sync"
)

// tracker counts work under way that a shutdown must wait for. Unlike a WaitGroup it refuses
// new work once closing began, so an Add cannot race the Wait.
type tracker struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{} // closed when closing and n reaches 0
}

func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closing {
		return false
	}
	t.n++
	return true
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.closing && t.n == 0 {
		close(t.idle)
	}
}

// wait refuses new work and waits until the work under way ended or ctx is done.
func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if !t.closing {
		t.closing = true
		t.idle = make(chan struct{})
		if t.n == 0 {
			close(t.idle)
		}
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
