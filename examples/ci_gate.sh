#!/usr/bin/env bash
# What a CI job runs before it deploys a model version: ask the gate, keep the signed decision as a
# build artifact, and check its signature. Exit 0 lets the deploy go on, 1 blocks it (the gate
# failed), 2 is an error (server unreachable, bad token, a decision that does not verify).
#
#   export MLGOV_URL=http://127.0.0.1:8000 MLGOV_TOKEN=mlg_...   # a token with gate:check (ci-bot's)
#   examples/ci_gate.sh income-classifier 2 production
set -uo pipefail
model="${1:?usage: ci_gate.sh MODEL VERSION [STAGE]}"
version="${2:?usage: ci_gate.sh MODEL VERSION [STAGE]}"
stage="${3:-production}"
mlgov="${MLGOV_CLI:-mlgov}"
out="${DECISION_FILE:-gate-decision.json}"

"$mlgov" gate --model "$model" --version "$version" --stage "$stage" --output "$out"
verdict=$?
if [ "$verdict" -eq 2 ]; then
  exit 2
fi
# The decision is signed with the service's Ed25519 key; anyone can check it later, offline, with
# the public key (here fetched from the service; pin it in CI with --public-key key.json).
# It must also be about this model, version and stage.
"$mlgov" verify-decision "$out" --model "$model" --version "$version" --stage "$stage" || exit 2
exit "$verdict"
