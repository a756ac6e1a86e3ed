package deploy

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/weft-edge/weft/internal/testkit"
	"github.com/weft-edge/weft/internal/testkit/pgtest"
)

// The origin on PostgreSQL (`weft origin --postgres`, `weft origin migrate`, `weft origin
// seed`) as the material runs it, and the third-party images beside weft's.

// driftPGServer is a PostgreSQL server the material runs (the official postgres image), as its
// clients reach it.
type driftPGServer struct {
	where        string
	hosts, ports map[string]bool // the names and ports it is reached at
	user, db     string          // what the image creates on a first start
	password     *driftFile      // POSTGRES_PASSWORD_FILE's, when the material holds it
}

// driftPostgres checks the processes of one deployment (a compose file, a Kubernetes variant,
// the systemd units) that take --postgres, against the servers beside them:
//
//   - the URL carries no password (a command line, a manifest, an env file: places secrets
//     must not be), names its user, and the process gets PGPASSFILE, where pgx, like libpq,
//     looks for the password when the URL has none;
//   - where the material holds that file (a compose secret, a Kubernetes Secret or secret
//     generator), pgx finds a password in it for the URL, and where the material runs the
//     server, the URL's host, port, user and database are the server's and the password is
//     the one the server was given;
//   - an origin on PostgreSQL (without --migrate) starts after a `weft origin migrate` of the
//     same database has run to completion: it refuses a schema that is not its version.
func driftPostgres(procs []*driftProc, servers []*driftPGServer, report driftReport) {
	for _, p := range procs {
		if p.inv == nil || p.inv.flags["postgres"].name == "" {
			continue
		}
		raw, given := p.inv.args["postgres"]
		if !given {
			raw, given = p.inv.env["postgres"]
		}
		if !given {
			if p.inv.role == "origin" {
				continue // the reference origin
			}
			report("%s: %s without --postgres (or WEFT_POSTGRES) exits at once", p.where, p.inv.key)
			continue
		}
		if raw != "" {
			driftPostgresURL(p, raw, servers, report)
		}
		if pf, ok := p.envVar("PGPASSFILE"); !ok {
			report("%s: %s connects to PostgreSQL without PGPASSFILE in its environment: with no password in the URL, pgx finds none", p.where, p.inv.key)
		} else if f, ok := p.files[pf.value]; ok && raw != "" {
			driftPostgresPassfile(raw, f, servers, report)
		}
		if p.inv.role != "origin" {
			continue
		}
		if migrate, _ := p.inv.get("migrate"); migrate == "true" {
			continue // it migrates at start
		}
		migrated := false
		for _, m := range p.before {
			if m.inv == nil || m.inv.key != "weft origin migrate" {
				continue
			}
			migrated = true
			if mu, _ := m.inv.get("postgres"); raw != "" && mu != "" && mu != raw {
				report("%s: migrates %s, but %s serves %s", m.flagWhere("postgres"), driftRedacted(mu), p.where, driftRedacted(raw))
			}
		}
		if !migrated {
			report("%s: weft origin --postgres starts with no weft origin migrate of its database run before it (an init container, a service it waits to complete, a unit it requires and follows), and refuses a schema that is not its version", p.where)
		}
	}
}

// driftPostgresURL checks a --postgres URL by itself, and against the server it names.
func driftPostgresURL(p *driftProc, raw string, servers []*driftPGServer, report driftReport) {
	where := p.flagWhere("postgres")
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		report("%s: --postgres %q is not a postgres:// URL", where, driftRedacted(raw))
		return
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		report("%s: --postgres holds a password, which whoever reads this (or lists the processes) sees: leave it out, and give the password file as PGPASSFILE", where)
	}
	if u.User.Username() == "" {
		report("%s: --postgres %s names no user: pgx would take the operating system's user name", where, driftRedacted(raw))
	}
	s := driftPGServerAt(servers, u.Hostname())
	if s == nil {
		return // the team's own, outside the material
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = u.User.Username()
	}
	switch {
	case !s.ports[port]:
		report("%s: --postgres %s dials port %s, where the server %s is not reached", where, driftRedacted(raw), port, u.Hostname())
	case u.User.Username() != s.user:
		report("%s: --postgres %s connects as %s, but the server (%s) creates user %s", where, driftRedacted(raw), u.User.Username(), s.where, s.user)
	case db != s.db:
		report("%s: --postgres %s names database %s, but the server (%s) creates %s", where, driftRedacted(raw), db, s.where, s.db)
	}
}

// driftPostgresPassfile checks the password file a process reads against the URL it connects
// with, the way pgx reads it, and the password against the server's.
func driftPostgresPassfile(raw string, f driftFile, servers []*driftPGServer, report driftReport) {
	cfg, err := driftPGConfig(raw, f.data)
	if err != nil {
		report("%s: pgx cannot read it with --postgres %s: %v", f.from, driftRedacted(raw), err)
		return
	}
	if cfg.Password == "" {
		report("%s: no line matches %s:%d:%s:%s, where --postgres %s connects: pgx finds no password in it", f.from, cfg.Host, cfg.Port, cfg.Database, cfg.User, driftRedacted(raw))
		return
	}
	if s := driftPGServerAt(servers, cfg.Host); s != nil && s.password != nil && strings.TrimRight(string(s.password.data), "\n") != cfg.Password {
		// Not the passwords themselves: real ones must not reach a test's log.
		report("%s: the password it gives %s@%s/%s is not the one the server (%s) is given, %s", f.from, cfg.User, cfg.Host, cfg.Database, s.where, s.password.from)
	}
}

// driftPGConfig is what pgx makes of raw with content as the file PGPASSFILE names: pgx's own
// parsing and pgpass lookup, not a copy of them.
func driftPGConfig(raw string, content []byte) (*pgconn.Config, error) {
	dir, err := os.MkdirTemp("", "weft-drift-pgpass-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "pgpass")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		return nil, err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "ssl") { // sslrootcert and its kind name files of the process's, which pgx opens
			q.Del(k)
		}
	}
	q.Set("sslmode", "disable")
	q.Set("passfile", file)
	q.Set("password", "") // above the URL's and PGPASSWORD's, should this test's environment have one
	u.RawQuery = q.Encode()
	return pgconn.ParseConfig(u.String())
}

// driftPGServerAt is the server reached at host: a compose service's name, a Service's (with or
// without the namespace and cluster domain after it).
func driftPGServerAt(servers []*driftPGServer, host string) *driftPGServer {
	for _, s := range servers {
		for h := range s.hosts {
			if host == h || strings.HasPrefix(host, h+".") {
				return s
			}
		}
	}
	return nil
}

// driftRedacted is a URL for a message, without a password it may hold.
func driftRedacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(not a URL)"
}

// driftImageUse is an image a container or compose service runs, and where.
type driftImageUse struct{ where, image string }

// driftImageName is an image's name without its registry, path, tag or digest: "postgres" of
// "docker.io/library/postgres:17.9-bookworm".
func driftImageName(image string) string {
	image, _, _ = strings.Cut(image, "@")
	base := path.Base(image)
	base, _, _ = strings.Cut(base, ":")
	return base
}

// driftImageRelease is an image's tag and digest: "v1" of both "registry/weft/weft:v1" and
// "registry/weft/weft-proxy:v1".
func driftImageRelease(image string) string {
	image, digest, _ := strings.Cut(image, "@")
	_, tag, _ := strings.Cut(path.Base(image), ":")
	return tag + "@" + digest
}

var driftPinned = regexp.MustCompile(`^v?[0-9]+\.[0-9]+`)

// driftCheckImages holds the images that are not weft's (weft's are built from the material's
// Dockerfiles and tagged by compose and the overlays) to a version: a tag of at least
// major.minor, or a digest, so that a start next year runs what was written (and, for a
// database, a data directory of the same major version); and one version of an image
// everywhere in the material.
func driftCheckImages(uses []driftImageUse, images driftImages, report driftReport) {
	sort.Slice(uses, func(i, j int) bool { return uses[i].where < uses[j].where })
	first := map[string]driftImageUse{}
	for _, u := range uses {
		if images.byImage(u.image) != nil {
			continue
		}
		repo, digest, _ := strings.Cut(u.image, "@")
		tag := ""
		if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
			repo, tag = repo[:i], repo[i+1:]
		}
		if digest == "" && !driftPinned.MatchString(tag) {
			report("%s: image %s is not pinned to a version (a tag of at least major.minor, or a digest)", u.where, u.image)
			continue
		}
		if f, ok := first[repo]; !ok {
			first[repo] = u
		} else if f.image != u.image {
			report("%s: image %s, where %s runs %s: one version of an image everywhere", u.where, u.image, f.where, f.image)
		}
	}
}

// TestDriftPostgresPassfile runs the material's way of giving weft its PostgreSQL password for
// real: a server that asks the client for one (SCRAM), a --postgres URL without it, and
// PGPASSFILE naming a file in the samples' format holding the samples' password. weft origin
// migrate and weft origin seed (the same connection code as weft origin's) connect with it,
// and fail without it: the server is not trusting them.
func TestDriftPostgresPassfile(t *testing.T) {
	weft := weftBin.Path(t)
	srv := pgtest.Start(t)
	// The sample's line, for the test server: its database and password, the host and port
	// where the server is, and a user of the test's own (the sample's, weft, is the test
	// server's superuser, which pgtest reaches without a password).
	sample, err := os.ReadFile("compose/pgpass.sample")
	testkit.OK(t, err)
	var fields []string
	for _, line := range strings.Split(string(sample), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			fields = strings.Split(line, ":")
			break
		}
	}
	testkit.True(t, len(fields) == 5, "compose/pgpass.sample: no hostname:port:database:username:password line")
	db, password := fields[2], fields[4]
	const user = "weft_passfile"

	ctx, cancel := context.WithTimeout(context.Background(), pgtest.ReadyWithin)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	testkit.OK(t, err)
	var hba string
	testkit.OK(t, conn.QueryRow(ctx, "SHOW hba_file").Scan(&hba))
	for _, sql := range []string{
		"SET password_encryption = 'scram-sha-256'",
		"CREATE ROLE " + user + " LOGIN PASSWORD " + pgQuote(password),
		"CREATE DATABASE " + pgx.Identifier{db}.Sanitize() + " OWNER " + user,
		// The first line that matches a connection decides: the test's user must give the
		// password; pgtest's superuser stays trusted, so that pgtest still reaches its server.
		"COPY (SELECT unnest(ARRAY['local all all trust', 'host all " + user + " 127.0.0.1/32 scram-sha-256', " +
			"'host all all 127.0.0.1/32 trust'])) TO " + pgQuote(hba),
	} {
		_, err := conn.Exec(ctx, sql)
		testkit.OK(t, err)
	}
	testkit.OK(t, conn.Close(ctx))
	srv.Restart(t) // reads pg_hba.conf again, and is back once it accepts connections

	passfile := filepath.Join(t.TempDir(), "pgpass")
	line := strings.Join([]string{"127.0.0.1", strconv.Itoa(srv.Port()), db, user, password}, ":")
	testkit.OK(t, os.WriteFile(passfile, []byte(string(sample)+line+"\n"), 0o600))
	u := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", user, srv.Port(), db)

	home := t.TempDir() // no ~/.pgpass to fall back on
	run := func(pgpassfile string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, weft, args...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
		if pgpassfile != "" {
			cmd.Env = append(cmd.Env, "PGPASSFILE="+pgpassfile)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := run("", "origin", "migrate", "--postgres", u)
	testkit.True(t, err != nil && strings.Contains(out, "password authentication failed"), "weft origin migrate without PGPASSFILE: want a refused password, got %v:\n%s", err, out)
	out, err = run(passfile, "origin", "migrate", "--postgres", u)
	testkit.True(t, err == nil && strings.Contains(out, "schema version"), "weft origin migrate with PGPASSFILE: %v:\n%s", err, out)
	out, err = run(passfile, "origin", "seed", "--postgres", u, "--size", "tiny")
	testkit.True(t, err == nil && strings.Contains(out, "tiny world"), "weft origin seed with PGPASSFILE: %v:\n%s", err, out)
}

// pgQuote is s as an SQL string literal.
func pgQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
