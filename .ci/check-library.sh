#!/usr/bin/env bash
# Proves the package another program installs works (docs/library.md): builds it, then resolves
# "bookapi-mesh" through its exports map as a consumer does (.ci/check-library.mjs), and compiles
# the example against the emitted declarations with its own tsconfig (node16 resolution, no path
# mapping). Usage: .ci/check-library.sh   (after `npm ci`)
set -euo pipefail
cd "$(dirname "$0")/.."

npm run build
node .ci/check-library.mjs
npx tsc --noEmit --skipLibCheck false -p examples/third-party-chart/tsconfig.json
echo "check-library: ok: examples/third-party-chart compiles against dist/ through the exports map"
