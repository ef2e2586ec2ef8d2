#!/bin/sh
# deploy/check-image-contents.sh OUT — checks what deploy/build.sh put in
# OUT the way the runtime image would run it, on a machine without a
# Docker engine (`make image-contents` runs both):
#
#   1. circled links only libraries the runtime image has (distroless
#      cc-debian12: glibc, libm, libgcc_s) and no glibc symbol newer than
#      its glibc (2.36);
#   2. as the image's user (uid/gid 65532, when this runs as root; else as
#      the current user, and it says so), with the image's data directory
#      (mode 0700, owned by that user): init, serve, /healthz and /readyz,
#      a backup through the running server, stop, restore into a new
#      directory, serve the restored circle.
set -eu
out=${1:?usage: deploy/check-image-contents.sh OUT}
bin=$out/usr/local/bin/circled
RUNTIME_GLIBC=2.36

echo "== libraries"
ldd "$bin"
for lib in $(ldd "$bin" | awk '{print $1}'); do
	case $(basename "$lib") in
	linux-vdso.so.1 | libc.so.6 | libm.so.6 | libgcc_s.so.1 | ld-linux-*.so.* | libpthread.so.0 | libdl.so.2 | librt.so.1) ;;
	*) echo "FAIL: circled needs $lib, which the runtime image does not have" >&2; exit 1 ;;
	esac
done
newest=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
echo "newest glibc symbol version: $newest (runtime image: $RUNTIME_GLIBC)"
if [ "$(printf '%s\n%s\n' "$newest" "$RUNTIME_GLIBC" | sort -V | tail -n 1)" != "$RUNTIME_GLIBC" ]; then
	echo "FAIL: circled needs glibc $newest, the runtime image has $RUNTIME_GLIBC" >&2
	exit 1
fi

tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
chmod 0755 "$tmp"
cp -a "$out/var/lib/circled" "$tmp/data"
if [ "$(id -u)" = 0 ]; then
	chown -R 65532:65532 "$tmp/data"
	install -d -o 65532 -g 65532 -m 0700 "$tmp/run"
	as="setpriv --reuid=65532 --regid=65532 --clear-groups --inh-caps=-all --"
	want_uid=65532
	echo "== running as uid 65532 (the image's nonroot user)"
else
	install -d -m 0700 "$tmp/run"
	as=""
	want_uid=$(id -u)
	echo "== not root: running as uid $want_uid (the non-root check needs root to switch user)"
fi
# The image's environment, with the listener on loopback for this check.
export CIRCLED_DATA="$tmp/data" CIRCLED_LISTEN=127.0.0.1:0

serve() { # serve DATA ADDRFILE: start circled serve, wait for its address
	# setpriv and env exec: $! is circled itself.
	$as env CIRCLED_DATA="$1" "$bin" serve --addr-file "$2" >"$tmp/run/serve.log" 2>&1 &
	pid=$!
	pids="$pids $pid"
	i=0
	while [ ! -s "$2" ]; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then echo "FAIL: circled did not start:" >&2; cat "$tmp/run/serve.log" >&2; exit 1; fi
		sleep 0.1
	done
	addr=$(cat "$2")
	curl -fsS "http://$addr/healthz" >/dev/null
	curl -fsS "http://$addr/readyz" >/dev/null
	# The phone app is embedded (not the "not built" page).
	if ! curl -fsS "http://$addr/app/" | grep -q '<script'; then
		echo "FAIL: /app/ does not serve the built phone app" >&2
		exit 1
	fi
	uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
	if [ "$uid" != "$want_uid" ]; then echo "FAIL: circled runs as uid $uid, want $want_uid" >&2; exit 1; fi
	echo "serving $1 at $addr as uid $uid"
}

$as "$bin" init --name "Image Check" --json
serve "$tmp/data" "$tmp/run/addr"
$as "$bin" backup --out "$tmp/run/circle.backup"
kill -TERM "$pid"
wait "$pid" || { echo "FAIL: circled did not stop cleanly on SIGTERM" >&2; exit 1; }
$as "$bin" restore --data "$tmp/run/restored" --in "$tmp/run/circle.backup"
serve "$tmp/run/restored" "$tmp/run/addr2"
kill -TERM "$pid"
wait "$pid" || { echo "FAIL: restored circled did not stop cleanly" >&2; exit 1; }
mode=$(stat -c '%a %u' "$tmp/data/nats")
echo "data directory store: mode and owner $mode"
echo "image contents: ok"
