package edge

import "testing"

// TestDrainOnlyFromLoopback: POST /drain is taken from the edge's own host only.
func TestDrainOnlyFromLoopback(t *testing.T) {
	for remote, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.3.2.1:5000": true, "[::1]:5000": true, "[::ffff:127.0.0.1]:5000": true,
		"10.0.0.7:5000": false, "[2001:db8::1]:5000": false, "0.0.0.0:5000": false, "garbage": false, "": false,
	} {
		if got := fromLoopback(remote); got != want {
			t.Errorf("fromLoopback(%q) = %v, want %v", remote, got, want)
		}
	}
}
