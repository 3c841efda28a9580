#!/usr/bin/env bash
# Proves `pulumi up` can compile and run the program from runtime dependencies alone: copies what a
# deploy needs into a scratch folder, installs it with `npm ci --omit=dev` and runs the program
# there as the Pulumi Node runtime would (.ci/check-runtime-deps.mjs).
# Usage: .ci/check-runtime-deps.sh [stack]   (after `npm ci` here: the driver parses YAML with it)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
stack="${1:-dev}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp package.json package-lock.json Pulumi.yaml Pulumi.*.yaml tsconfig.json index.ts "$scratch"/
cp -R components "$scratch"/

echo "check-runtime-deps: npm ci --omit=dev in $scratch"
(cd "$scratch" && npm ci --omit=dev --no-audit --no-fund)
# ts-node caches compiled output in the OS temp folder by default; keep it in the scratch folder.
(cd "$scratch" && TS_NODE_CACHE_DIRECTORY="$scratch/.ts-node-cache" \
  node "$repo/.ci/check-runtime-deps.mjs" "$stack")
