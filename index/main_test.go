package index_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every index's goroutines (its build, bleve's scorch workers) must be gone after Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// bleve's analysis workers: started once per process by the package, never stopped.
		goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"),
	)
}
