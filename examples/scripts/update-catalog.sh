#!/usr/bin/env bash
# Ask catalog-updater to update Citrix catalog(s) to a new image and wait for the outcome.
#
#   CATALOG_UPDATER_URL=https://func-xyz.azurewebsites.net CATALOG_UPDATER_KEY=*** \
#     update-catalog.sh --catalog "Win11 Pool" --image "win11-24h2-1.2.3" [--vda-update-delay -1]
#   update-catalog.sh --url URL --body request.json        # any POST /api/updates body
#
# Exit codes: 0 succeeded / already_current, 1 failed / timed_out / cancelled / rejected,
#             2 usage, configuration or transport error (the update may still be running).
# Needs curl and jq. The function key is read from CATALOG_UPDATER_KEY (or --key) and sent in
# the x-functions-key header; it is never printed.
set -uo pipefail

usage() {
  cat >&2 <<'USAGE'
usage: update-catalog.sh [--url URL] (--body FILE | --catalog NAME [--catalog NAME]... --image IMAGE)
                         [--vda-update-delay MINUTES] [--dry-run] [--force]
                         [--timeout MINUTES] [--max-interval SECONDS] [--key KEY]
  --url               Function App base URL (default: $CATALOG_UPDATER_URL)
  --key               function key (default: $CATALOG_UPDATER_KEY; prefer the variable)
  --body FILE         JSON body for POST /api/updates ('-' = stdin); replaces the options below
  --catalog NAME      catalog name or id (repeat for several catalogs)
  --image IMAGE       Citrix image name or id
  --vda-update-delay  -1 = next natural restart (default of the app), 0 = now, N = within N minutes
  --dry-run           check everything, submit nothing
  --force             run again even if the same update already finished
  --timeout MINUTES   stop waiting after this long (default 420); the update itself continues
  --max-interval SECONDS  longest pause between status checks (default 60)
exit codes: 0 succeeded/already_current, 1 failed/timed_out/cancelled/rejected, 2 usage/transport
USAGE
}

die() { # die CODE MESSAGE
  echo "update-catalog: $2" >&2
  exit "$1"
}

url="${CATALOG_UPDATER_URL:-}"
key="${CATALOG_UPDATER_KEY:-}"
body_file=""
image=""
delay=""
dry_run=false
force=false
timeout_minutes=420
max_interval=60
catalogs=()

while [ $# -gt 0 ]; do
  case "$1" in
    --url) [ $# -ge 2 ] || { usage; exit 2; }; url="$2"; shift 2 ;;
    --key) [ $# -ge 2 ] || { usage; exit 2; }; key="$2"; shift 2 ;;
    --body) [ $# -ge 2 ] || { usage; exit 2; }; body_file="$2"; shift 2 ;;
    --catalog) [ $# -ge 2 ] || { usage; exit 2; }; catalogs+=("$2"); shift 2 ;;
    --image) [ $# -ge 2 ] || { usage; exit 2; }; image="$2"; shift 2 ;;
    --vda-update-delay) [ $# -ge 2 ] || { usage; exit 2; }; delay="$2"; shift 2 ;;
    --timeout) [ $# -ge 2 ] || { usage; exit 2; }; timeout_minutes="$2"; shift 2 ;;
    --max-interval) [ $# -ge 2 ] || { usage; exit 2; }; max_interval="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --force) force=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die 2 "unknown argument: $1" ;;
  esac
done

command -v curl >/dev/null 2>&1 || die 2 "curl is required"
command -v jq >/dev/null 2>&1 || die 2 "jq is required"
[ -n "$url" ] || { usage; die 2 "no URL: pass --url or set CATALOG_UPDATER_URL"; }
case "$url" in
  https://*) ;;
  # the local functions host only: the host must end where the port or path begins
  http://127.0.0.1|http://127.0.0.1[:/]*|http://localhost|http://localhost[:/]*) ;;
  http://\[::1\]|http://\[::1\][:/]*) ;;
  *) die 2 "the URL must start with https:// (http only for localhost)" ;;
esac
url="${url%/}"
[[ "$delay" =~ ^(-1|[0-9]+)?$ ]] || die 2 "--vda-update-delay must be -1 or a whole number of minutes"
[[ "$timeout_minutes" =~ ^[0-9]+$ ]] || die 2 "--timeout must be a whole number of minutes"
[[ "$max_interval" =~ ^[0-9]+$ ]] && [ "$max_interval" -ge 1 ] || die 2 "--max-interval must be a positive number of seconds"

if [ -n "$body_file" ]; then
  [ ${#catalogs[@]} -eq 0 ] && [ -z "$image" ] || die 2 "--body replaces --catalog/--image; give one or the other"
  if [ "$body_file" = "-" ]; then body="$(cat)"; else
    [ -r "$body_file" ] || die 2 "cannot read $body_file"
    body="$(cat "$body_file")"
  fi
  printf '%s' "$body" | jq -e 'type == "object"' >/dev/null 2>&1 || die 2 "$body_file is not a JSON object"
else
  [ ${#catalogs[@]} -gt 0 ] || { usage; die 2 "give --catalog (one or more) or --body"; }
  [ -n "$image" ] || { usage; die 2 "give --image"; }
  body="$(jq -n --arg image "$image" --argjson dry "$dry_run" --argjson force "$force" \
    --arg delay "$delay" '$ARGS.positional as $c
      | {image: $image}
      + (if ($c | length) == 1 then {catalog: $c[0]} else {catalogs: $c} end)
      + (if $delay == "" then {} else {vdaUpdateDelay: ($delay | tonumber)} end)
      + (if $dry then {dryRun: true} else {} end)
      + (if $force then {force: true} else {} end)' --args "${catalogs[@]}")" \
    || die 2 "could not build the request body"
fi

# curl config on stdin keeps the key out of the process list.
headers_file="$(mktemp)"
body_out="$(mktemp)"
err_file="$(mktemp)"
trap 'rm -f "$headers_file" "$body_out" "$err_file"' EXIT
[ -n "$key" ] || echo "update-catalog: no function key (CATALOG_UPDATER_KEY); Azure will answer 401" >&2

http() { # http METHOD URL [DATA] -> sets $status; body in $body_out, headers in $headers_file
  local method="$1" target="$2" data="${3-}"
  local args=(--silent --show-error --max-time 60 --connect-timeout 15 -X "$method"
    -D "$headers_file" -o "$body_out" -w '%{http_code}' -H 'Accept: application/json')
  if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$data"); fi
  local rc
  if [ -n "$key" ]; then
    status="$(printf 'header = "x-functions-key: %s"\n' "$key" | curl "${args[@]}" -K - "$target" 2>"$err_file")"
    rc=$?
  else
    status="$(curl "${args[@]}" "$target" 2>"$err_file")"
    rc=$?
  fi
  if [ $rc -ne 0 ]; then
    transport_error="$(head -c 300 "$err_file")"
    status=000
    return 1
  fi
  return 0
}

error_text() { # the API's {"error": {"field", "reason"}} in one line
  jq -r 'if .error.reason then ((.error.field // "") + (if .error.field then ": " else "" end) + .error.reason)
         else (.error.message // tostring) end' "$body_out" 2>/dev/null | head -c 500
}

retry_after() { # seconds from the Retry-After header (default 10), at most max_interval
  local value
  value="$(tr -d '\r' <"$headers_file" | awk -F': *' 'tolower($1) == "retry-after" {print $2}' | tail -n 1)"
  [[ "$value" =~ ^[0-9]+$ ]] || value=10
  [ "$value" -gt "$max_interval" ] && value="$max_interval"
  echo "$value"
}

# 1. Submit.
http POST "$url/api/updates" "$body" || die 2 "cannot reach $url: ${transport_error:-unknown error}"
case "$status" in
  200|202) ;;
  400|409|413|422) die 1 "rejected (HTTP $status): $(error_text)" ;;
  401|403) die 2 "HTTP $status from $url: check the function key (CATALOG_UPDATER_KEY)" ;;
  404) die 2 "HTTP 404 from $url/api/updates: is this the catalog-updater Function App?" ;;
  *) die 2 "HTTP $status from POST /api/updates: $(error_text)" ;;
esac
instance_id="$(jq -r '.instanceId // empty' "$body_out")"
[ -n "$instance_id" ] || die 2 "the response has no instanceId"
duplicate="$(jq -r '.duplicate // false' "$body_out")"
echo "update-catalog: accepted, instance $instance_id$([ "$duplicate" = true ] && echo ' (an existing update for the same catalog and image)')"

# 2. Wait. Poll our own base URL (never a host named in the response: the key must not leak).
status_url="$url/api/updates/$(jq -rn --arg id "$instance_id" '$id | @uri')"
deadline=$(( $(date +%s) + timeout_minutes * 60 ))
failures=0
last_line=""
pause="$(retry_after)"
while :; do
  [ "$(date +%s)" -lt "$deadline" ] || die 2 "gave up waiting after $timeout_minutes minutes; the update continues: $status_url"
  sleep "$pause"
  if ! http GET "$status_url"; then
    failures=$((failures + 1))
    [ "$failures" -lt 5 ] || die 2 "cannot reach $url ($failures attempts): ${transport_error:-unknown error}"
    echo "update-catalog: status check failed (${transport_error:-transport error}); retrying" >&2
    pause="$max_interval"; continue
  fi
  case "$status" in
    200|202) failures=0 ;;
    401|403) die 2 "HTTP $status while polling: check the function key" ;;
    404|429|5??)
      failures=$((failures + 1))
      [ "$failures" -lt 5 ] || die 2 "HTTP $status from $status_url ($failures attempts): $(error_text)"
      echo "update-catalog: HTTP $status while polling; retrying" >&2
      pause="$(retry_after)"; continue ;;
    *) die 2 "HTTP $status from $status_url: $(error_text)" ;;
  esac
  outcome="$(jq -r '.outcome // empty' "$body_out")"
  if [ -z "$outcome" ]; then
    line="$(jq -r 'def brief: [.phase, .state, .subState, (if .progress != null then "\(.progress)%" else null end)] | map(select(. != null and . != "")) | join(", ");
      "running: " + brief + ((.catalogUpdates // []) | map("; \(.catalog // .instanceId): " + brief) | join(""))' "$body_out")"
    [ "$line" = "$last_line" ] || echo "update-catalog: $line"
    last_line="$line"
    pause="$(retry_after)"
    continue
  fi
  summary="$(jq -r '[.results[]? | select(. != null) | "  \(.catalog.name // .catalog.ref // .catalog.id // "catalog"): \(.outcome // "?")\(if .error.message then " - " + .error.message else "" end)"] | join("\n")' "$body_out")"
  case "$outcome" in
    succeeded|already_current)
      echo "update-catalog: $outcome"
      [ -n "$summary" ] && echo "$summary"
      exit 0 ;;
    failed|timed_out|cancelled|rejected)
      echo "update-catalog: $outcome: $(jq -r --arg o "$outcome" '.error | if . then (if (.category // $o) == $o then "" else "\(.category): " end) + (.message // "") else "no details" end' "$body_out")" >&2
      [ -n "$summary" ] && echo "$summary" >&2
      echo "update-catalog: details: $status_url" >&2
      exit 1 ;;
    *) die 2 "unknown outcome '$outcome' from $status_url" ;;
  esac
done
