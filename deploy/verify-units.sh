#!/bin/sh
# deploy/verify-units.sh BIN — systemd-analyze verify on deploy/systemd/*
# in a scratch root (the units name /usr/local/bin/circled, which need not
# be installed here), with this machine's systemd units for the targets
# they refer to. verify exits 0 even for unknown keys, so any output fails.
# Then the offline security score of each service, for information.
set -eu
bin=${1:?usage: deploy/verify-units.sh BIN}
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze not found (apt-get install systemd); units not verified" >&2
	exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/bin" "$root/usr/bin"
cp "$bin" "$root/usr/local/bin/circled"
cp -a /lib/systemd/system "$root/usr/lib/systemd/"
cp /bin/sh "$root/bin/sh"
cp "$(command -v find)" "$root/usr/bin/find"
cp deploy/systemd/* "$root/etc/systemd/system/"
status=0
for unit in deploy/systemd/*; do
	name=$(basename "$unit")
	msgs=$(systemd-analyze --root="$root" verify "$root/etc/systemd/system/$name" 2>&1) || status=1
	if [ -n "$msgs" ]; then
		echo "$msgs"
		status=1
	fi
	echo "verify $name: $([ -z "$msgs" ] && echo ok || echo FAILED)"
done
for unit in deploy/systemd/*.service; do
	systemd-analyze security --offline=yes --root="$root" "$root/etc/systemd/system/$(basename "$unit")" 2>&1 | tail -n 1
done
exit $status
