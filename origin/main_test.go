package origin

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is left behind (the client's transport,
// the reference origins the external tests start).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
