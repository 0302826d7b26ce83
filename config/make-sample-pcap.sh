#!/bin/sh
# Regenerates config/sample.pcap, the small deterministic capture that
# exercises flowgate's parser and flow table (see
# benches/src/pcapgen/sample.rs for its contents).
#
# The capture is committed, so `make run` and the tests work without
# generating it; rerun this after changing the generator and commit the
# result (`cargo test -p flowgate-bench` fails while the committed file is
# stale).
set -eu
cd "$(dirname "$0")/.."
cargo run -q --release -p flowgate-bench --bin flowgate-pcapgen -- sample --out config/sample.pcap
