#!/usr/bin/env bash
# Refresh the front-end libraries the dashboard serves itself (no CDN): install the versions that
# package.json pins (package-lock.json fixes the tree) and copy their built files, with their
# licences, into static/vendor/ (axe-core, used only by the browser tests, into tests/e2e/vendor/).
# The copies are committed, so neither `scripts/up.sh` nor CI needs npm; run this after changing
# package.json.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund --ignore-scripts
copy() {  # copy FILE... DEST_DIR
  local dest="${*: -1}"
  mkdir -p "$dest"
  cp "${@:1:$#-1}" "$dest/"
}
copy node_modules/plotly.js-basic-dist-min/plotly-basic.min.js node_modules/plotly.js-basic-dist-min/LICENSE static/vendor/plotly
copy node_modules/cytoscape/dist/cytoscape.min.js node_modules/cytoscape/LICENSE static/vendor/cytoscape
copy node_modules/dagre/dist/dagre.min.js node_modules/dagre/LICENSE static/vendor/dagre
copy node_modules/cytoscape-dagre/cytoscape-dagre.js node_modules/cytoscape-dagre/LICENSE static/vendor/cytoscape-dagre
copy node_modules/axe-core/axe.min.js node_modules/axe-core/LICENSE tests/e2e/vendor
echo "vendored: $(du -sh static/vendor tests/e2e/vendor | tr '\n' ' ')"
