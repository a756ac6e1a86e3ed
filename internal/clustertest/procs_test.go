package clustertest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/natscluster"
	"github.com/weft-edge/weft/pubsub"
)

// weftBin and weftProxyBin are this module's weft and weft-proxy, built by the first test that
// runs one.
var (
	weftBin      = testkit.Built{Build: testkit.GoBuild("weft", "github.com/weft-edge/weft/cmd/weft")}
	weftProxyBin = testkit.Built{Build: testkit.GoBuild("weft-proxy", "github.com/weft-edge/weft/cmd/weft-proxy")}
)

// TestOperatorStreamSurvivesEveryProcess: an operator created WEFT_EVENTS on the cluster with
// settings of their own, none of them weft's defaults. Starting each kind of weft process
// against it, with the flags' defaults (which differ from every one of those settings), and
// stopping it again leaves the stream exactly as the operator made it. The origin, the
// stream's owner, says what differs.
func TestOperatorStreamSurvivesEveryProcess(t *testing.T) {
	c := natscluster.Start(t, 3)
	nc := c.Conn(t)
	js, err := jetstream.New(nc)
	testkit.OK(t, err)
	natscluster.CreateStream(t, js, jetstream.StreamConfig{
		Name:              pubsub.StreamName,
		Description:       "the operator's",
		Subjects:          []string{pubsub.StreamSubjects},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgs:           -1,
		MaxBytes:          1 << 30,
		MaxAge:            72 * time.Hour,
		MaxMsgsPerSubject: 5000,
		Storage:           jetstream.FileStorage,
		Replicas:          3,
		Duplicates:        5 * time.Minute,
		AllowDirect:       true, // weft's edges read gaps with direct gets
	})
	c.WaitStreamCurrent(t, nc, pubsub.StreamName, 3)
	want := streamConfig(t, js)

	weft, weftProxy := weftBin.Path(t), weftProxyBin.Path(t)
	const secret = "clustertest-secret-0123456789"
	for _, p := range []struct {
		name  string
		bin   string
		args  []string
		ready *regexp.Regexp // the line on stdout that says it is up, and where it listens
		probe string         // a path that answers 200 once it serves
	}{
		{"weft origin", weft, []string{"origin", "--addr", "127.0.0.1:0"},
			regexp.MustCompile(`^\s+origin\s+http://([0-9.:]+)/`), "/origin/admin/faults"},
		{"weft edge", weft, []string{"edge", "--addr", "127.0.0.1:0", "--node", "edge-a", "--token-secret", secret,
			"--origin", "http://127.0.0.1:1"}, regexp.MustCompile(`^weft edge edge-a: http://([0-9.:]+)`), "/healthz"},
		{"weft proxy", weft, []string{"proxy", "--addr", "127.0.0.1:0", "--token-secret", secret},
			regexp.MustCompile(`^weft proxy: http://([0-9.:]+)`), "/healthz"},
		{"weft-proxy", weftProxy, []string{"--addr", "127.0.0.1:0", "--token-secret", secret},
			regexp.MustCompile(`^weft-proxy: http://([0-9.:]+)`), "/healthz"},
	} {
		stderr := runUntilUp(t, p.name, p.bin, append(p.args, "--nats", c.URLs()), p.ready, p.probe)
		if got := streamConfig(t, js); !reflect.DeepEqual(got, want) {
			t.Errorf("after %s: stream config\n got %+v\nwant %+v", p.name, got, want)
		}
		if p.name == "weft origin" {
			for _, diff := range []string{"max-age", "max-per-subject", "max-bytes", "replicas", "duplicate-window"} {
				if !strings.Contains(stderr, diff) {
					t.Errorf("weft origin's log does not name the differing %s:\n%s", diff, stderr)
				}
			}
		}
	}
}

// streamConfig is the stream's configuration as the cluster holds it.
func streamConfig(t *testing.T, js jetstream.JetStream) jetstream.StreamConfig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, pubsub.StreamName)
	testkit.OK(t, err)
	info, err := st.Info(ctx)
	testkit.OK(t, err)
	return info.Config
}

// runUntilUp runs bin with args until it prints a line matching ready (whose first group is
// the address it listens on) and answers GET probe there with 200, then stops it with SIGTERM
// and waits for a clean exit. It returns the process's stderr (its log).
func runUntilUp(t *testing.T, name, bin string, args []string, ready *regexp.Regexp, probe string) string {
	t.Helper()
	var stderr testkit.SyncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	testkit.OK(t, err)
	testkit.OK(t, cmd.Start())
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() { // reads stdout until the process exits, then waits for it
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case err := <-exited:
			return err
		case <-t.C:
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not stop within 30s of SIGTERM", name)
		}
	}
	var at string
	up := time.NewTimer(natscluster.ReadyWithin)
	defer up.Stop()
	select {
	case at = <-addr:
	case err := <-exited:
		t.Fatalf("%s exited before it was up: %v\n%s", name, err, stderr.String())
	case <-up.C:
		_ = stop()
		t.Fatalf("%s did not say it was up within %v:\n%s", name, natscluster.ReadyWithin, stderr.String())
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	var answer string
	testkit.EventuallyOr(t, testkit.Within, func() bool {
		resp, err := hc.Get("http://" + at + probe)
		if err != nil {
			answer = err.Error()
			return false
		}
		resp.Body.Close()
		answer = resp.Status
		return resp.StatusCode == http.StatusOK
	}, name+" answering "+probe, func() {
		t.Logf("%s: last %s: %s; its log:\n%s", name, probe, answer, stderr.String())
		_ = stop()
	})
	if err := stop(); err != nil {
		t.Errorf("%s: %v\n%s", name, err, stderr.String())
	}
	return stderr.String()
}
