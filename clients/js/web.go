// Package js holds weft's JavaScript client (src/, an ES module with type declarations) and the
// page `weft dev` serves at / (page/): plain HTML, CSS and ES modules on that client, embedded
// here so that the binary carries them. The client's own tests run under node --test
// (node_test.go runs them from go test); the page's run in headless Chromium (browser_test.go).
package js

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed page src/*.js
var files embed.FS

// contentSecurity keeps the page on its own origin: scripts, styles, images and connections
// (the WebSocket and fetch; CSP 3's 'self' covers ws:// to the same host) go nowhere else, so
// the demo world's avatar URLs, under the reserved example.com, are never fetched and nothing a
// message says can load a script.
const contentSecurity = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Page serves the page and the client module it imports:
//
//	GET /              page/index.html
//	GET /app/{file}    page/{file}
//	GET /weft/{file}   src/{file}, the client (client.js, store.js, backoff.js)
//
// Mount it in front of an edge or proxy on the same origin as its /ws: the browser then sends
// the token in the query (docs/protocol.md) and the client's /api/ping diagnosis is same-origin.
func Page() http.Handler {
	page, _ := fs.Sub(files, "page") // the patterns above guarantee both folders
	src, _ := fs.Sub(files, "src")
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, page, "index.html")
	}))
	mux.Handle("GET /app/", http.StripPrefix("/app/", http.FileServerFS(page)))
	mux.Handle("GET /weft/", http.StripPrefix("/weft/", http.FileServerFS(src)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurity)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary, not while it runs; no-cache still revalidates
		// (embed's files carry no modification time, so the check is cheap and always fresh).
		h.Set("Cache-Control", "no-cache")
		if strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != "/" {
			http.NotFound(w, r) // no directory listings
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Paths says whether the page serves path, so that a front can send everything else on to the
// edge or proxy behind it.
func Paths(path string) bool {
	return path == "/" || strings.HasPrefix(path, "/app/") || strings.HasPrefix(path, "/weft/")
}
