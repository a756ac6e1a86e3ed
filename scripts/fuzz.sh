#!/bin/sh
# Runs the fuzz targets of what weft parses from outside, one after the other, each for
# FUZZTIME (default 10m), with FUZZPARALLEL workers (default 1: leaves a core for the rest).
# Not part of CI's run (go test runs each target's seed corpus only). A crasher the fuzzer
# finds is written under the package's testdata/fuzz/<target>/: fix the bug and keep the file,
# which go test then runs as a seed for good.
#
#   sh scripts/fuzz.sh                      # every target, 10 minutes each
#   FUZZTIME=30s sh scripts/fuzz.sh edge    # the targets of one package, briefly
set -eu
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10m}
p=${FUZZPARALLEL:-1}
only=${1:-}
run() {
	case "$only" in "" | "$1") ;; *) return 0 ;; esac
	echo "== ./$1 $2 ($3), $t"
	go test "./$1" -run '^$' -fuzz "^$2\$" -fuzztime "$t" -parallel "$p"
}
run edge FuzzReadMessage "client frames: the edge's WebSocket reader"
run edge FuzzDispatch "client frames: requests, decoded and dispatched"
run internal/token FuzzVerifyFast "tokens: the fast path held to the JWT library"
run internal/token FuzzVerify "tokens: the library path"
run edge FuzzCursorOpen "cursors: sealed paging cursors"
run internal/routesig FuzzVerify "routing signatures between proxy and edge"
run origin FuzzDecodePage "origin pages"
run origin FuzzDecodeEvent "events from NATS"
