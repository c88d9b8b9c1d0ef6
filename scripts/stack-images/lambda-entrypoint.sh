#!/bin/sh
# moto runs a zip function as `docker run IMAGE HANDLER EVENT_JSON` with the zip at /var/task, returns the last
# line of stdout as the Invoke payload (a non-zero exit becomes FunctionError) and writes all the output to
# CloudWatch Logs. This serves the one event through the runtime's local mode. Its HTTP body is the handler's
# proxy envelope, the same bytes Lambda mode posts to the Runtime API as the response, so it is printed
# unchanged: the payload equals what Lambda's Invoke returns. (provided.al2023 ignores HANDLER: Lambda too
# always runs /var/task/bootstrap.)
set -u
if [ $# -ge 2 ]; then event=$2; else event='{}'; fi
# moto points functions at host.docker.internal; this container shares the host's network (host mode).
export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT:?moto sets MOTO_PORT}"
unset AWS_LAMBDA_RUNTIME_API MLAMBDA_LISTEN
log=/tmp/bootstrap.log
: >"$log"   # before the wait loop reads it
# Port 0: the kernel picks a free loopback port, so concurrent invokes on the host network never collide; the
# runtime logs the address it bound (runtime/src/local.rs: "local mode on http://ADDR/…"). stdout goes with
# stderr so EMF and prediction lines reach the logs.
MLAMBDA_LISTEN=127.0.0.1:0 /var/task/bootstrap >"$log" 2>&1 &
pid=$!

flush() { # the runtime's log to stderr, ending in a newline (moto joins stderr and stdout before splitting lines)
  cat "$log" >&2
  [ -z "$(tail -c1 "$log")" ] || echo >&2
}
stop() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
fail() { # errorType message: a Lambda-shaped error payload; exit 1 makes moto report a FunctionError
  stop
  flush
  printf '{"errorType":"%s","errorMessage":"%s"}\n' "$1" "$2"
  exit 1
}

url=
tries=0
while [ -z "$url" ]; do
  url=$(sed -n 's|.*local mode on \(http://127\.0\.0\.1:[0-9]*/\).*|\1|p' "$log" | head -n1)
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || fail Runtime.ExitError "bootstrap exited during init; its log is above"
  tries=$((tries + 1))
  [ "$tries" -lt 600 ] || fail Runtime.InitTimeout "bootstrap did not log its local mode address within 30 s"
  sleep 0.05
done

printf '%s' "$event" >/tmp/event.json
# moto does not enforce the function's Timeout: this does, for the request itself.
timeout="${AWS_LAMBDA_FUNCTION_TIMEOUT:-3}"
answer=$(timeout "$timeout" wget -q -O - --header 'Content-Type: application/json' \
  --post-file /tmp/event.json "${url}2015-03-31/functions/function/invocations")
rc=$?
[ "$rc" -ne 143 ] || fail Sandbox.Timedout "Task timed out after $timeout seconds"
[ "$rc" -eq 0 ] && [ -n "$answer" ] || fail Runtime.ExitError "bootstrap gave no answer (wget exit $rc)"
stop
flush
printf '%s\n' "$answer"
