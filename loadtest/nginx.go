package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"
)

// The nginx front is the baseline weft's proxy is measured against (issue 20): nginx as a
// plain consistent-hash reverse proxy over edges that run standalone (no ring, no ownership
// checks), the way a team would put weft's edges behind the proxy it already runs. nginx
// cannot read a team out of a token, so its clients name their team in the URL (?team=),
// which nginx hashes on: `hash $arg_team consistent` (ketama). When an edge dies nginx marks
// it failed on the first refused connection (max_fails 1, fail_timeout 10s: its defaults)
// and sends the request to the next server of the hash ring.

// FrontWeft and FrontNginx name what stands in front of a Cluster's edges.
const (
	FrontWeft  = "weft"
	FrontNginx = "nginx"
)

// nginxReadyPath answers 204 from nginx itself, so the cluster knows nginx is up without
// involving an edge.
const nginxReadyPath = "/weft-nginx-ready"

// nginxConf is nginx's whole configuration. What is not written is nginx's default (Debian's
// nginx.conf sets the same worker_processes), except what running on loopback beside other
// servers takes: every path under the run's directory, no access log (weft's proxy keeps
// none), and room for the connections (worker_connections counts both sides of a proxied
// one). The WebSocket lines are those of nginx's own WebSocket proxying guide; the read
// timeout is raised as that guide says to, since a quiet session may send nothing for longer
// than the default 60s.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# written by weft-loadtest
worker_processes auto;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
daemon off;
events {
    worker_connections 16384;
}
http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    upstream edges {
        hash $arg_team consistent;
{{- range .Edges}}
        server {{.}};
{{- end}}
    }
    server {
        listen {{.Addr}};
        location = {{.Ready}} {
            return 204;
        }
        location / {
            proxy_pass http://edges;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
        }
    }
}
`))

// NginxBinary finds nginx: on the PATH, else where Debian installs it.
func NginxBinary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("loadtest: nginx not found (on the PATH or at /usr/sbin/nginx): install Debian's nginx-light (apt-get install nginx-light; .ci/run does)")
}

// startNginx runs nginx in front of edges with its configuration in dir, and returns once it
// answers. Its Proc stops nginx's workers with it.
func startNginx(ctx context.Context, name, dir string, edges []*Proc, stderr io.Writer, timeout time.Duration) (*Proc, error) {
	bin, err := NginxBinary()
	if err != nil {
		return nil, err
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	dir = filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	var hosts []string
	for _, e := range edges {
		hosts = append(hosts, strings.TrimPrefix(e.URL, "http://"))
	}
	conf := filepath.Join(dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	err = nginxConf.Execute(f, map[string]any{"Dir": dir, "Edges": hosts, "Addr": addr, "Ready": nginxReadyPath})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("loadtest: writing %s: %w", conf, err)
	}
	// -e: the error log before the configuration is read (else nginx opens /var/log/nginx's).
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", "stderr")
	ownGroup(cmd)
	c, err := startChild(name, cmd, stderr, func(io.Reader) {})
	if err != nil {
		return nil, err
	}
	c.group = true
	p := &Proc{child: c, Name: name, URL: "http://" + addr}
	if err := waitNginx(ctx, p, timeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// waitNginx polls nginx's own ready location until it answers 204.
func waitNginx(ctx context.Context, p *Proc, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+nginxReadyPath, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case <-p.Exited():
			return fmt.Errorf("loadtest: %s exited before it was up: %v (its errors are on stderr)", p.Name, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("loadtest: %s never answered on %s: %w", p.Name, p.URL, ctx.Err())
		case <-tick.C:
		}
	}
}

// freeLoopbackAddr finds a free port on 127.0.0.1 for a server that cannot listen on port 0
// and say which port it got (nginx). Another process could take it before the server binds
// it; on a loopback test machine that does not happen in practice, and the server's start
// then fails loudly.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("loadtest: %w", err)
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// rssOfGroup is the RSS of pid and the processes it started (nginx's master and workers). Pages
// they share count once per process, as the kernel reports them: compare two readings of the
// same processes, not one reading with another server's.
func rssOfGroup(pid int) (int64, error) {
	kids, err := childPIDs(pid)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range append([]int{pid}, kids...) {
		b, err := procStatusBytes(p, "VmRSS")
		if err != nil {
			return 0, err
		}
		sum += b
	}
	return sum, nil
}
