package postgres

// MigrateTo applies the migrations up to a version: a database as an older weft left it.
var MigrateTo = migrateTo
