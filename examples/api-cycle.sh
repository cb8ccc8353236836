#!/bin/sh
# A full backup and restore cycle through the REST API, with curl and a token only:
# back up a cluster's namespace, wait for it, list what it holds, preview a restore
# into another cluster, confirm it, and print the per-item results.
#
#   PALETTE_URL=http://127.0.0.1:8000 PALETTE_TOKEN=pbc_... \
#   CLUSTER=cluster-a LOCATION=disk NAMESPACE=shop TARGET=cluster-b \
#   [MAP_TO=shop-copy] [TIMEOUT=600] sh examples/api-cycle.sh
#
# A token: Account > API tokens, or `manage.py create_token USER`. The script needs no
# JSON tool: the API answers compact JSON, and the few fields read here are plain.
set -eu

: "${PALETTE_URL:?set PALETTE_URL, e.g. http://127.0.0.1:8000}"
: "${PALETTE_TOKEN:?set PALETTE_TOKEN (manage.py create_token USER)}"
: "${CLUSTER:?set CLUSTER, the cluster to back up}"
: "${LOCATION:?set LOCATION, the backup location}"
: "${NAMESPACE:?set NAMESPACE, the namespace to back up}"
: "${TARGET:?set TARGET, the cluster to restore into}"
MAP_TO=${MAP_TO:-$NAMESPACE}
TIMEOUT=${TIMEOUT:-600}
API="${PALETTE_URL%/}/api/v1"

# call METHOD PATH [JSON]: the answer's body; stops the script on an HTTP error.
call() {
  body=$(curl -sS -X "$1" -H "Authorization: Bearer $PALETTE_TOKEN" \
    -H "Content-Type: application/json" ${3:+--data "$3"} -w '\n%{http_code}' "$API$2")
  code=$(printf '%s' "$body" | tail -n 1)
  body=$(printf '%s' "$body" | sed '$d')
  case "$code" in
    2??) printf '%s' "$body" ;;
    *) echo "$1 $2 answered $code: $body" >&2; exit 1 ;;
  esac
}

# field NAME: the first value of "NAME" in the JSON on stdin (a number or a string).
field() {
  grep -o "\"$1\":\(\"[^\"]*\"\|[0-9-]*\)" | head -n 1 | sed 's/^"[^"]*"://' | tr -d '"'
}

# wait_for KIND ID: poll until the job's phase is final; prints that phase.
wait_for() {
  waited=0
  while :; do
    phase=$(call GET "/$1/$2/" | field phase)
    case "$phase" in Completed|PartiallyFailed|Failed) echo "$phase"; return ;; esac
    if [ "$waited" -ge "$TIMEOUT" ]; then
      echo "$1 $2 still $phase after ${TIMEOUT}s" >&2; exit 1
    fi
    sleep 1; waited=$((waited + 1))
  done
}

backup=$(call POST /backups/ "{\"cluster\": \"$CLUSTER\", \"location\": \"$LOCATION\", \"include_namespaces\": [\"$NAMESPACE\"]}")
backup_id=$(printf '%s' "$backup" | field id)
echo "backup $(printf '%s' "$backup" | field name) started"
phase=$(wait_for backups "$backup_id")
echo "backup phase: $phase"
if [ "$phase" = Failed ]; then
  echo "error: $(call GET "/backups/$backup_id/" | field error)" >&2; exit 1
fi

contents=$(call GET "/backups/$backup_id/contents/")
types=$(printf '%s' "$contents" | grep -o '"type":"[^"]*"' | wc -l | tr -d ' ')
echo "backup holds $types resource types:"
printf '%s' "$contents" | grep -o '"type":"[^"]*","count":[0-9]*' \
  | sed 's/"type":"\([^"]*\)","count":\([0-9]*\)/  \1: \2/'

options="\"backup\": $backup_id, \"target_cluster\": \"$TARGET\", \"include_namespaces\": [\"$NAMESPACE\"], \"namespace_mapping\": {\"$NAMESPACE\": \"$MAP_TO\"}"
preview_id=$(call POST /restores/ "{$options, \"preview\": true}" | field id)
echo "preview phase: $(wait_for restores "$preview_id")"
echo "preview would create $(call GET "/restores/$preview_id/" | field created_count) objects"

restore=$(call POST "/restores/$preview_id/confirm/")
restore_id=$(printf '%s' "$restore" | field id)
echo "restore $(printf '%s' "$restore" | field name) started"
phase=$(wait_for restores "$restore_id")
echo "restore phase: $phase"

echo "items:"
call GET "/restores/$restore_id/items/?page_size=500" | grep -o '"outcome":"[a-z_]*"' \
  | sed 's/"outcome":"\([a-z_]*\)"/\1/' | sort | uniq -c | sed 's/^ */  /'
[ "$phase" != Failed ]
