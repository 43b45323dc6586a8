#!/usr/bin/env bash
# Start the whole local stack for `make run`: a loopback SMTP sink, the worker,
# the example mail store and (in the foreground) the API server. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
DATA=${DATA:-var}
LOCKBOX_PORT=${LOCKBOX_PORT:-8000}
MAILSTORE_PORT=${MAILSTORE_PORT:-8100}
SMTP_PORT=${SMTP_PORT:-8025}

export LOCKBOX_SMTP_HOST=127.0.0.1 LOCKBOX_SMTP_PORT="$SMTP_PORT" LOCKBOX_SMTP_SECURITY=none
# The demo provider's name and admin-center address (pages and e-mails say them).
export LOCKBOX_PROVIDER_NAME="${LOCKBOX_PROVIDER_NAME:-Acme Cloud}"
export LOCKBOX_PUBLIC_ADDRESS="${LOCKBOX_PUBLIC_ADDRESS:-127.0.0.1:$LOCKBOX_PORT}"
# Plain HTTP on loopback: session cookies without the Secure flag.
export LOCKBOX_COOKIE_SECURE="${LOCKBOX_COOKIE_SECURE:-false}"

for port in "$LOCKBOX_PORT" "$MAILSTORE_PORT" "$SMTP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is already in use; set LOCKBOX_PORT / MAILSTORE_PORT / SMTP_PORT" >&2
    exit 1
  fi
done

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# Every e-mail the worker sends lands as a file in $DATA/mail (a Maildir): nothing leaves the machine.
mkdir -p "$DATA/mail/tmp" "$DATA/mail/new" "$DATA/mail/cur"
"$BIN/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$DATA/mail" &
pids+=($!)

"$BIN/lockbox" worker > "$DATA/worker.log" 2>&1 &
pids+=($!)

# shellcheck disable=SC1090,SC1091
set -a; . "$DATA/demo-tokens.env"; set +a
LOCKBOX_URL="http://127.0.0.1:$LOCKBOX_PORT" \
MAILSTORE_LOCKBOX_TOKEN="${LOCKBOX_TOKEN_RESOURCE_SERVICE:-}" \
  "$BIN/python" -m examples.mailstore --host 127.0.0.1 --port "$MAILSTORE_PORT" > "$DATA/mailstore.log" 2>&1 &
pids+=($!)

cat <<MSG

  Admin center     http://127.0.0.1:$LOCKBOX_PORT/   (sign in as a demo user, e.g.
                   paula@contoso.example / demo-contoso-approver-password; all passwords above)
  Lockbox API      http://127.0.0.1:$LOCKBOX_PORT/v1   (OpenAPI docs at /docs)
  Example mailstore http://127.0.0.1:$MAILSTORE_PORT
  E-mails          $DATA/mail/new/   (worker log: $DATA/worker.log)
  Demo API tokens  $DATA/demo-tokens.env   (one per role; see README "Try it")

MSG
"$BIN/lockbox" serve --host 127.0.0.1 --port "$LOCKBOX_PORT"
