#!/bin/sh
# narrawatch container entrypoint.
#
# The configuration directory is mounted read-only at /config. The container runs on an
# effective copy in /run/narrawatch/config where only these keys of service.yaml are overridden:
#   data_dir                      -> /data (the volume; $NARRAWATCH_DATA_DIR overrides, for tests)
#   index.backend                 -> $NARRAWATCH_INDEX_BACKEND        (if set, e.g. elasticsearch)
#   index.elasticsearch.username  -> $NARRAWATCH_ES_USERNAME          (if set)
#   state.backend                 -> $NARRAWATCH_STATE_BACKEND        (if set, e.g. postgresql)
#   api.host / api.port           -> $NARRAWATCH_API_HOST / $NARRAWATCH_API_PORT (set in the Dockerfile:
#                                    0.0.0.0:8765, the port docker/compose.yml publishes on 127.0.0.1)
# The Elasticsearch URL and password come from NARRAWATCH_ES_URL / NARRAWATCH_ES_PASSWORD
# (ElasticsearchSettings.urls_env / password_env), never from files.
set -eu

SRC="${NARRAWATCH_CONFIG_SOURCE:-/config}"
DST="${NARRAWATCH_RUNTIME_CONFIG:-/run/narrawatch/config}"
if [ "$DST" = "$SRC" ]; then
    echo "narrawatch: NARRAWATCH_RUNTIME_CONFIG must differ from the mounted config $SRC" >&2
    exit 2
fi

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
data["data_dir"] = os.environ.get("NARRAWATCH_DATA_DIR", "/data")
api_host = os.environ.get("NARRAWATCH_API_HOST")
api_port = os.environ.get("NARRAWATCH_API_PORT")
if api_host or api_port:
    api = data.get("api") or {}
    data["api"] = api
    if api_host:
        api["host"] = api_host
    if api_port:
        api["port"] = int(api_port)
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
state = os.environ.get("NARRAWATCH_STATE_BACKEND")
if state:
    data["state"] = {**(data.get("state") or {}), "backend": state}
with open(path, "w", encoding="utf-8") as fh:
    yaml.safe_dump(data, fh, allow_unicode=True, sort_keys=False)
PY

exec narrawatch --config "$DST" "$@"
