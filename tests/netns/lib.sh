# tests/netns/lib.sh - helpers for the netns tier; sourced by each test_*.sh.
#
# Every test file creates its own worlds (names carry the file's name and
# PID, so files may run in parallel), removes them on exit, also when it
# fails, and prints one line per check: "ok - ..." or "not ok - ...".

set -u
SIM=${SIM:-build/egress-sim}
PASS=0
FAIL=0
WORLDS=()

ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }

# check DESC CMD...: the command must succeed
check() {
	local desc=$1
	shift
	if "$@" >/tmp/egress-netns-out.$$ 2>&1; then
		ok "$desc"
	else
		not_ok "$desc (exit $?): $(head -c 600 /tmp/egress-netns-out.$$)"
	fi
}

# check_fails DESC CMD...: the command must fail
check_fails() {
	local desc=$1
	shift
	if "$@" >/tmp/egress-netns-out.$$ 2>&1; then
		not_ok "$desc (unexpected success): $(head -c 300 /tmp/egress-netns-out.$$)"
	else
		ok "$desc"
	fi
}

# check_eq DESC WANT GOT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: want [$2], got [$3]"; fi
}

# check_match DESC REGEX TEXT
check_match() {
	if printf '%s' "$3" | grep -Eq -- "$2"; then
		ok "$1"
	else
		not_ok "$1: [$2] not in [$(printf '%s' "$3" | head -c 600)]"
	fi
}

# Time bounds in checks hold on real hardware; an emulated CPU (the VM
# matrix under TCG) multiplies them by TEST_TIME_SCALE.
TIME_SCALE=${TEST_TIME_SCALE:-1}
scaled_ms() { echo $(($1 * TIME_SCALE)); }

world_name() { echo "t$(basename "$0" .sh | tr -cd 'a-z0-9' | tail -c 12)-$$-$1"; }

# world_up NAME [egress-sim up options]: brings a world up, registered for
# removal when the test exits
world_up() {
	local name=$1
	shift
	WORLDS+=("$name")
	"$SIM" up "$name" "$@" >/dev/null
}

# in_world NAME PLACE CMD...: runs CMD in a place of a world
in_world() {
	local name=$1 place=$2
	shift 2
	"$SIM" exec "$name" "$place" -- "$@"
}

cleanup_worlds() {
	local w
	for w in "${WORLDS[@]}"; do
		"$SIM" down "$w" >/dev/null 2>&1 || echo "# warning: down $w failed" >&2
	done
	rm -f /tmp/egress-netns-out.$$
}
trap cleanup_worlds EXIT

finish() {
	echo "# $(basename "$0"): $PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
}

require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "not ok - the netns tier needs root (network namespaces, cgroups)"
		exit 1
	fi
}

# require_python3 WHY: the test's clients or log checks are python3
require_python3() {
	command -v python3 >/dev/null || {
		echo "not ok - python3 is missing ($1)"
		exit 1
	}
}
