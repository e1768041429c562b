#!/bin/sh
# make bench: one run on this machine of the broker ceiling, the whole hub
# (200 letters/s offered, then saturation, three sinks), the hub on the
# Benthos peer's one-sink flow and the peer itself, side by side; writes
# bench/results/latest.json and latest.md. It reports the targets and never
# fails on them. See docs/performance.md.
#
# Sizes (defaults keep the run to a few minutes on 2 cores):
#   BENCH_CEILING_N=20000 BENCH_RATE=200 BENCH_RATE_SECS=30 BENCH_N=10000 BENCH_PEER_N=10000
#   BENCH_SAMEFLOW_N (default BENCH_PEER_N)
# BENCH_PEER_BIN=""    use a prebuilt peer; BENCH_NO_PEER=1 skips it
# BENCH_NO_SAMEFLOW=1  skips the hub on the peer's flow
# BENCH_CPUPROFILE=f   CPU profile of the saturation phase (go tool pprof f)
# BENCH_CPUPROFILE_OFFERED=f  the same for the offered-load phase
# BENCH_LATENCIES=f    each letter's latencies in the offered-load phase
# GOMEMLIMIT=…         a soft memory limit for the run (default: none, Go's GC
#                      defaults); docs/performance.md has what 150MiB costs
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}

if [ -z "${BENCH_NO_PEER:-}" ] && [ -z "${BENCH_PEER_BIN:-}" ]; then
	# The peer is its own module (bench/peer/go.mod): Benthos never enters
	# the hub's go.mod. Its modules come from the Go module proxy.
	mkdir -p bin
	if (cd bench/peer && $GO build -o ../../bin/samhub-bench-peer .); then
		BENCH_PEER_BIN=$PWD/bin/samhub-bench-peer
	else
		echo "bench: the peer did not build; running without it" >&2
	fi
fi
export BENCH_PEER_BIN="${BENCH_PEER_BIN:-}"

exec $GO run ./bench/cmd/samhub-bench
