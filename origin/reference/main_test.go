package reference

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left behind (Activity.Run, servers).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
