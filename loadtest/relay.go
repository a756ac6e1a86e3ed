package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// RelayCommand is the weft-loadtest subcommand that runs a plain TCP relay: the fronts
// scenario's floor for any front written in Go. It reads nothing of what it relays, so it
// cannot route by team; it sends every connection to one edge (a standalone one, which serves
// any team).
//
// It is written as a Go engineer writes a TCP relay when latency is not yet a concern: a
// goroutine per accepted connection that dials the upstream, and io.Copy each way (which
// splices between two TCP sockets). What it adds to a connection's setup over going straight to
// the edge is what Go's runtime and one more TCP hop cost, before any proxy logic: the part
// of weft's proxy's setup cost no proxy code can remove.
const RelayCommand = "tcp-relay"

// FrontRelay names the plain relay as a Cluster's front.
const FrontRelay = "relay"

// RunRelay relays every connection accepted on a free loopback port to upstream until ctx
// ends, then closes what it holds. It prints its address as "tcp-relay: http://ADDR".
func RunRelay(ctx context.Context, upstream string, out io.Writer) error {
	if upstream == "" {
		return errors.New("tcp-relay: want the upstream address")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "tcp-relay: http://%s\n", ln.Addr())
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	track := func(c net.Conn, add bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if conns == nil { // stopping
			return false
		}
		if add {
			conns[c] = struct{}{}
		} else {
			delete(conns, c)
		}
		return true
	}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		conns = nil
		mu.Unlock()
	})
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			relayConn(c, upstream, track)
		}()
	}
}

// relayConn dials upstream for c and copies both ways until both are done.
func relayConn(c net.Conn, upstream string, track func(net.Conn, bool) bool) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	if !track(c, true) || !track(u, true) {
		return
	}
	defer track(c, false)
	defer track(u, false)
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(u, c)
		u.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, u)
	c.(*net.TCPConn).CloseWrite()
	<-done
}
