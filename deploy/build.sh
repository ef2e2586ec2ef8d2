#!/bin/sh
# deploy/build.sh OUT — builds what the runtime image holds into the
# directory OUT: OUT/usr/local/bin/circled and the empty data directory
# OUT/var/lib/circled. The Dockerfile's build stage runs exactly this, and
# so does `make image-contents` on a machine without a Docker engine.
# Run from the repository root; needs Go and gcc (cgo: automerge-go).
set -eu
out=${1:?usage: deploy/build.sh OUT}
export CGO_ENABLED=1
mkdir -p "$out/usr/local/bin" "$out/var/lib/circled"
# -trimpath: no build machine paths in the binary; -s -w: no symbol tables.
go build -trimpath -ldflags='-s -w' -o "$out/usr/local/bin/circled" ./cmd/circled
chmod 0755 "$out/usr/local/bin/circled"
chmod 0700 "$out/var/lib/circled"
