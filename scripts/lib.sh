# Steps the scripts share; sourced (`. scripts/lib.sh`), not run. Each
# function fails (non-zero) rather than going on with a half-made state.

# free_port: a TCP port on 127.0.0.1 that nobody holds right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_healthy BASE PID: waits until BASE/api/v1/health answers; fails at
# once when process PID (the cloud) exits, or after 60 s.
wait_healthy() {
    local base=$1 pid=$2
    for _ in $(seq 1 120); do
        if curl -fsS "$base/api/v1/health" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$(basename "$0"): lastseen-cloud exited" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "$(basename "$0"): lastseen-cloud did not answer $base/api/v1/health" >&2
    return 1
}

# json PATH: the value at PATH (a Python subscript like "['id']") of the JSON on stdin.
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# api METHOD BASE PATH TOKEN BODY: one call of BASE/api/v1/PATH with a JSON
# BODY (TOKEN empty for none); its answer on stdout, failing on an error status.
api() {
    curl -fsS -X "$1" "$2/api/v1/$3" -H 'content-type: application/json' \
        ${4:+-H "authorization: Bearer $4"} -d "$5"
}

# user_token BASE USER PASSWORD: registers USER unless it exists, logs in and
# prints the access token.
user_token() {
    local credentials="{\"username\":\"$2\",\"password\":\"$3\"}"
    api POST "$1" auth/register "" "$credentials" >/dev/null 2>&1 || true
    api POST "$1" auth/login "" "$credentials" | json "['access_token']"
}

# new_device BASE USER_TOKEN NAME PREFIX: adds device NAME to the user and
# writes its id to PREFIX.id and its token (readable by the owner only) to PREFIX.token.
new_device() {
    local created
    created=$(api POST "$1" devices "$2" "{\"name\":\"$3\"}")
    json "['id']" <<<"$created" > "$4.id"
    (umask 077 && json "['token']" <<<"$created" > "$4.token")
}
