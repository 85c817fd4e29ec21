# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are read by the scripts that source this file
# Shared helpers for scripts/gen-clients, scripts/check-clients and scripts/test.
# Source it; it is not meant to be run.
#
# Generator versions are pinned here (Go) and in clients/python/requirements-dev.txt
# (Python). The generated files name these versions in their headers, so a
# different version shows up as "stubs are stale" in scripts/check-clients.

# --- pins -------------------------------------------------------------------
# protoc-gen-go must not be newer than the google.golang.org/protobuf runtime in
# clients/go/go.mod; protoc-gen-go-grpc's output needs grpc-go >= 1.64.
PROTOC_GEN_GO_VERSION="v1.36.11"
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"
# grpcurl for tests/grpcurl.rs (the README's recipes, run for real).
GRPCURL_MODULE="github.com/fullstorydev/grpcurl"
GRPCURL_VERSION="v1.9.3"
# protoc for the Go stubs: the binary in the protoc-bin-vendored crate that
# Cargo.lock pins (3.3.0), reached through tools/protoc. The Python stubs use
# the protoc built into the pinned grpcio-tools instead.
PROTOC_EXPECTED_VERSION="libprotoc 36.2"

# --- paths ------------------------------------------------------------------
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The Python venv (gitignored). Override with TOPOM_VENV.
VENV_DIR="${TOPOM_VENV:-$REPO_ROOT/.venv}"
PY_REQUIREMENTS="$REPO_ROOT/clients/python/requirements-dev.txt"
# Go code generators live outside the work tree, one folder per version, so
# nothing here can be committed by accident and versions never mix.
TOOLS_DIR="${TOPOM_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/topom-tools}"

log() { printf '%s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Runs a command as root (directly, or through sudo when available).
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $*"
	fi
}

# Exits non-zero unless every `name==version` pin of the requirements file is
# what the venv has installed.
_venv_matches_pins() {
	"$PYTHON" - "$PY_REQUIREMENTS" <<'PY'
import importlib.metadata as md
import re
import sys

bad = []
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
    if not m:
        continue
    name, want = m.groups()
    try:
        have = md.version(name)
    except md.PackageNotFoundError:
        have = None
    if have != want:
        bad.append(f"{name}: have {have}, want {want}")
if bad:
    print("venv differs from the pins: " + "; ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
}

# Creates the venv if needed and installs the pinned requirements into it
# (again whenever an installed version differs from its pin).
# Sets PYTHON to the venv's interpreter.
ensure_venv() {
	if [ ! -x "$VENV_DIR/bin/python" ]; then
		command -v python3 >/dev/null 2>&1 || die "python3 not found (apt-get install -y python3 python3-venv)"
		log "creating Python venv in $VENV_DIR"
		if ! python3 -m venv "$VENV_DIR"; then
			rm -rf "$VENV_DIR"
			log "python3 -m venv failed; installing python3-venv"
			as_root apt-get update
			as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
			python3 -m venv "$VENV_DIR" || die "could not create a venv in $VENV_DIR"
		fi
	fi
	PYTHON="$VENV_DIR/bin/python"
	if ! _venv_matches_pins 2>/dev/null; then
		log "installing $PY_REQUIREMENTS into $VENV_DIR"
		"$PYTHON" -m pip install --disable-pip-version-check --quiet -r "$PY_REQUIREMENTS" ||
			die "pip install -r $PY_REQUIREMENTS failed"
		_venv_matches_pins || die "the venv in $VENV_DIR still differs from $PY_REQUIREMENTS"
	fi
}

# Installs one Go tool at a pinned version into its own folder and prints the
# folder. $1 = package path, $2 = version, $3 = expected `--version` output.
_ensure_go_tool() {
	local pkg="$1" version="$2" expected="$3"
	local name dir
	name="$(basename "$pkg")"
	dir="$TOOLS_DIR/$name@$version"
	if [ ! -x "$dir/$name" ] || [ "$("$dir/$name" --version 2>/dev/null)" != "$expected" ]; then
		command -v go >/dev/null 2>&1 || die "go not found on PATH (install Go >= 1.25)"
		log "installing $pkg@$version into $dir"
		mkdir -p "$dir"
		GOBIN="$dir" go install "$pkg@$version" ||
			die "go install $pkg@$version failed"
	fi
	local got
	got="$("$dir/$name" --version 2>/dev/null || true)"
	[ "$got" = "$expected" ] || die "$dir/$name --version says '$got', expected '$expected'"
	printf '%s\n' "$dir"
}

# Makes the pinned protoc-gen-go and protoc-gen-go-grpc available and puts
# their folders first on PATH.
ensure_go_tools() {
	local d1 d2
	d1="$(_ensure_go_tool google.golang.org/protobuf/cmd/protoc-gen-go \
		"$PROTOC_GEN_GO_VERSION" "protoc-gen-go $PROTOC_GEN_GO_VERSION")"
	d2="$(_ensure_go_tool google.golang.org/grpc/cmd/protoc-gen-go-grpc \
		"$PROTOC_GEN_GO_GRPC_VERSION" "protoc-gen-go-grpc ${PROTOC_GEN_GO_GRPC_VERSION#v}")"
	PROTOC_GEN_GO="$d1/protoc-gen-go"
	PROTOC_GEN_GO_GRPC="$d2/protoc-gen-go-grpc"
}

# Makes the pinned grpcurl available; sets GRPCURL_BIN. Its --version says
# "dev build" when built with go install, so the version is read from the
# module info Go embeds in the binary instead.
ensure_grpcurl() {
	local dir="$TOOLS_DIR/grpcurl@$GRPCURL_VERSION"
	GRPCURL_BIN="$dir/grpcurl"
	if ! _grpcurl_is_pinned; then
		command -v go >/dev/null 2>&1 || die "go not found on PATH (install Go >= 1.25)"
		log "installing $GRPCURL_MODULE/cmd/grpcurl@$GRPCURL_VERSION into $dir"
		mkdir -p "$dir"
		GOBIN="$dir" go install "$GRPCURL_MODULE/cmd/grpcurl@$GRPCURL_VERSION" ||
			die "go install $GRPCURL_MODULE/cmd/grpcurl@$GRPCURL_VERSION failed"
	fi
	_grpcurl_is_pinned || die "$GRPCURL_BIN is not $GRPCURL_MODULE $GRPCURL_VERSION"
}

_grpcurl_is_pinned() {
	[ -x "$GRPCURL_BIN" ] &&
		go version -m "$GRPCURL_BIN" 2>/dev/null |
		grep -Eq "^[[:space:]]+mod[[:space:]]+$GRPCURL_MODULE[[:space:]]+$GRPCURL_VERSION([[:space:]]|\$)"
}

# Finds the pinned protoc and an include folder holding the well-known types.
# Sets PROTOC and PROTOC_INCLUDE.
ensure_protoc() {
	PROTOC="$REPO_ROOT/tools/protoc"
	[ -x "$PROTOC" ] || die "$PROTOC is missing or not executable"
	local got
	got="$("$PROTOC" --version 2>/dev/null || true)"
	if [ "$got" != "$PROTOC_EXPECTED_VERSION" ]; then
		# The vendored protoc arrives with the crate sources: fetch them.
		log "tools/protoc gave '${got:-nothing}'; running cargo fetch for the vendored protoc"
		(cd "$REPO_ROOT" && cargo fetch --locked) >&2 || die "cargo fetch failed"
		got="$("$PROTOC" --version 2>/dev/null || true)"
	fi
	[ "$got" = "$PROTOC_EXPECTED_VERSION" ] ||
		die "tools/protoc is '${got:-missing}', expected '$PROTOC_EXPECTED_VERSION' (the protoc-bin-vendored crate in Cargo.lock). If Cargo.lock moved to a new protoc-bin-vendored, update PROTOC_EXPECTED_VERSION in scripts/lib.sh and run scripts/gen-clients."

	# The well-known types: next to the vendored binary, else from grpcio-tools.
	local reg="${CARGO_HOME:-$HOME/.cargo}/registry/src" inc
	PROTOC_INCLUDE=""
	for inc in "$reg"/*/protoc-bin-vendored-linux-*/include; do
		if [ -f "$inc/google/protobuf/timestamp.proto" ]; then
			PROTOC_INCLUDE="$inc"
			break
		fi
	done
	if [ -z "$PROTOC_INCLUDE" ] && [ -n "${PYTHON:-}" ]; then
		inc="$("$PYTHON" -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
		[ -f "$inc/google/protobuf/timestamp.proto" ] && PROTOC_INCLUDE="$inc"
	fi
	[ -n "$PROTOC_INCLUDE" ] || die "no include folder with google/protobuf/timestamp.proto found"
}

# Prints a stage banner.
banner() {
	printf '\n==================== %s ====================\n' "$*"
}
