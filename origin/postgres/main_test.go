package postgres_test

import (
	"os"
	"testing"

	"github.com/weft-edge/weft/internal/testkit/pgtest"
)

// TestMain stops the PostgreSQL server the tests share and then fails the run if any
// goroutine is left behind (a publisher, a pool).
func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }
