#!/usr/bin/env bash
# `npm run up:local`: `pulumi up` on the `local` stack, which renders YAML into rendered/ and
# touches no cluster. State goes to a file backend inside the project (.pulumi-state/), for this
# command only, so the user's own `pulumi login` is untouched.
set -euo pipefail
# The project is two folders up from this script (bash only: no dirname when PATH is bare).
case "${BASH_SOURCE[0]}" in */*) here="${BASH_SOURCE[0]%/*}" ;; *) here=. ;; esac
cd "$here/../.."

if ! command -v pulumi >/dev/null 2>&1; then
  echo "npm run up:local needs the Pulumi CLI, which is not on PATH." >&2
  echo "Install it (https://www.pulumi.com/docs/install/), then run npm run up:local again." >&2
  echo "To review the mesh without it, npm run render -- local writes the same objects." >&2
  exit 1
fi

mkdir -p .pulumi-state
export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-}"
# The render needs no cluster, but the Kubernetes provider would still read an ambient
# kubeconfig and contact that cluster for discovery (pulumi-kubernetes#3498, #2535): give it an
# empty one.
empty_kubeconfig="$(mktemp)"
trap 'rm -f "$empty_kubeconfig"' EXIT
export KUBECONFIG="$empty_kubeconfig"
unset KUBERNETES_SERVICE_HOST

pulumi stack select --create local
pulumi up --stack local --yes
