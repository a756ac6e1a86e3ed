package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock key that makes concurrent Migrate calls (several origins
// starting at once) take turns.
const migrateLock = 0x77656674 // "weft"

// Migrate brings the database's schema to this build's version, each migration in its own
// transaction, recorded in weft_schema_migrations; it returns the versions it applied. A
// database newer than this build is refused: an old binary must not write a newer schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	return migrateTo(ctx, pool, math.MaxInt)
}

// migrateTo applies the migrations up to version upto (the tests make older schemas with it).
func migrateTo(ctx context.Context, pool *pgxpool.Pool, upto int) ([]int, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	type step struct {
		version int
		name    string
	}
	var steps []step
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		v, err := strconv.Atoi(base[:strings.IndexByte(base, '_')])
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %s: no version prefix", f)
		}
		steps = append(steps, step{v, f})
	}
	slices.SortFunc(steps, func(a, b step) int { return a.version - b.version })

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return nil, fmt.Errorf("postgres: migrate: lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrateLock) //nolint:errcheck // released with the session anyway
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS weft_schema_migrations (
		version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM weft_schema_migrations`).Scan(&current); err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	if latest := steps[len(steps)-1].version; current > latest {
		return nil, fmt.Errorf("postgres: the database's schema is version %d, newer than this build's %d: run a newer weft", current, latest)
	}
	var applied []int
	for _, st := range steps {
		if st.version <= current || st.version > upto {
			continue
		}
		sql, err := migrations.ReadFile(st.name)
		if err != nil {
			return applied, err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO weft_schema_migrations (version) VALUES ($1)`, st.version)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("postgres: migration %s: %w", st.name, err)
		}
		applied = append(applied, st.version)
	}
	return applied, nil
}

// Latest is the schema version this build's migrations make.
func Latest() int {
	files, _ := fs.Glob(migrations, "migrations/*.sql")
	latest := 0
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		if v, err := strconv.Atoi(base[:strings.IndexByte(base, '_')]); err == nil {
			latest = max(latest, v)
		}
	}
	return latest
}

// CheckSchema says whether the database's schema is this build's: an origin serves only a
// database that `weft origin migrate` brought to its version.
func CheckSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var current int
	err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM weft_schema_migrations`).Scan(&current)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
			return fmt.Errorf("postgres: the database has no weft schema: run weft origin migrate first")
		}
		return fmt.Errorf("postgres: reading the schema version: %w", err)
	}
	switch latest := Latest(); {
	case current < latest:
		return fmt.Errorf("postgres: the database's schema is version %d, this build needs %d: run weft origin migrate", current, latest)
	case current > latest:
		return fmt.Errorf("postgres: the database's schema is version %d, newer than this build's %d: run a newer weft", current, latest)
	}
	return nil
}
