package tlsfiles_test

import (
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }
