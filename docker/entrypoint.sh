#!/bin/sh
# narrawatch container entrypoint.
#
# The configuration directory is mounted read-only at /config. The container runs on an
# effective copy in /run/narrawatch/config where only these keys of service.yaml are overridden:
#   data_dir                      -> /data (the volume)
#   index.backend                 -> $NARRAWATCH_INDEX_BACKEND        (if set, e.g. elasticsearch)
#   index.elasticsearch.username  -> $NARRAWATCH_ES_USERNAME          (if set)
# The Elasticsearch URL and password come from NARRAWATCH_ES_URL / NARRAWATCH_ES_PASSWORD
# (ElasticsearchSettings.urls_env / password_env), never from files.
set -eu

SRC="${NARRAWATCH_CONFIG_SOURCE:-/config}"
DST=/run/narrawatch/config

if [ ! -d "$SRC" ]; then
    echo "narrawatch: no configuration at $SRC (mount your config directory there)" >&2
    exit 2
fi
rm -rf "$DST"
mkdir -p "$DST"
cp -R "$SRC"/. "$DST"/

python - "$DST/service.yaml" <<'PY'
import os
import sys

import yaml

path = sys.argv[1]
try:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
except FileNotFoundError:
    data = {}
data["data_dir"] = "/data"
backend = os.environ.get("NARRAWATCH_INDEX_BACKEND")
if backend:
    index = data.setdefault("index", {}) or {}
    data["index"] = index
    index["backend"] = backend
    user = os.environ.get("NARRAWATCH_ES_USERNAME")
    if backend == "elasticsearch" and user:
        es = index.get("elasticsearch") or {}
        es["username"] = user
        index["elasticsearch"] = es
with open(path, "w", encoding="utf-8") as fh:
    yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False)
PY

exec narrawatch --config "$DST" "$@"
