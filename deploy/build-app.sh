#!/bin/sh
# deploy/build-app.sh — bundles the phone app into mobile-api/app/dist,
# which circled embeds (mobile-api/app.go): the packages pinned by its
# package-lock.json, then esbuild. The Dockerfile's app stage runs exactly
# this, and so does `make image-contents`. Run from the repository root;
# needs node >= 20 and npm.
set -eu
npm ci --prefix mobile-api/app --no-audit --no-fund
npm run --prefix mobile-api/app --silent build
test -s mobile-api/app/dist/index.html
