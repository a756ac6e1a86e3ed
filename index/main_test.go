package index_test

import (
	"testing"

	"github.com/weft-edge/weft/internal/testkit"
)

// Every index's goroutines (its build, bleve's scorch workers) must be gone after Close.
func TestMain(m *testing.M) { testkit.VerifyTestMain(m) }
