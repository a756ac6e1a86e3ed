package postgres

// MigrateTo applies the migrations up to a version: a database as an older weft left it.
var MigrateTo = migrateTo

// SetPruneBatch sets how many rows one pruning statement deletes, until the test ends.
func SetPruneBatch(t interface{ Cleanup(func()) }, n int) {
	old := pruneBatch
	pruneBatch = n
	t.Cleanup(func() { pruneBatch = old })
}
