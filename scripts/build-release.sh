#!/usr/bin/env bash
# Build the certprobe release binary: the exact steps the Dockerfile's build stage
# runs (it calls this script), so CI, which has no docker engine, tests the same
# build by running this script.
#
# Usage:
#   scripts/build-release.sh [--out DIR]   build, strip, smoke-run, copy to DIR (default: dist)
#   scripts/build-release.sh --check       dry checks only: tools present, toolchain new
#                                          enough for rust-version, Cargo.lock in sync
#                                          (cargo metadata --locked), Dockerfile wired to
#                                          this script; builds nothing
#   scripts/build-release.sh --print       print the build commands without running them
#
# Environment: CARGO_TARGET_DIR is honoured (the Dockerfile points it at a cache
# mount). CARGO_BUILD_JOBS limits parallelism on shared machines.
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(cd -- "$here/.." && pwd)
bin=certprobe
out="$root/dist"
mode=build

die() { echo "build-release: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --check) mode=check ;;
        --print) mode=print ;;
        --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift ;;
        --out=*) out=${1#--out=} ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
    shift
done

# --out is relative to the caller's directory.
out=$(realpath -m -- "$out")
cd "$root"
target_dir=${CARGO_TARGET_DIR:-$root/target}
built="$target_dir/release/$bin"

# Run (or, with --print, only show) one build step.
step() {
    if [ "$mode" = print ]; then
        printf '%s\n' "$*"
    else
        echo "+ $*" >&2
        "$@"
    fi
}

# The build itself: the only place these steps are written down (the Dockerfile
# runs this script instead of repeating them).
build() {
    step cargo build --release --locked --bin "$bin"
    # Strip the copy: cargo's output is hard-linked into target/release/deps, and a stripped
    # target/release binary has no symbols left for perf or heaptrack.
    step install -D -m 0755 "$built" "$out/$bin"
    step strip --strip-unneeded "$out/$bin"
    # Smoke test: the stripped binary starts and reports its version, on jemalloc with the
    # settings of .cargo/config.toml compiled in (docs/dependencies.md).
    step "$out/$bin" --version
    step sh -c "_RJEM_MALLOC_CONF=stats_print:true '$out/$bin' --version 2>&1 | grep -q '^  opt.narenas: 2\$'"
    step sh -c "cd '$out' && sha256sum '$bin' > '$bin.sha256'"
    if [ "$mode" = build ]; then
        echo "built $out/$bin ($(du -h "$out/$bin" | cut -f1)), sha256 $(cut -d' ' -f1 "$out/$bin.sha256")"
    fi
}

# Compare dotted versions: is $1 >= $2 ?
version_ge() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

check() {
    local ok=1 tool
    for tool in cargo rustc strip install sha256sum; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "missing tool: $tool" >&2; ok=0
        fi
    done
    [ -f Cargo.toml ] || { echo "no Cargo.toml in $root" >&2; ok=0; }
    [ -f Cargo.lock ] || { echo "no Cargo.lock in $root: --locked builds need it" >&2; ok=0; }
    [ "$ok" = 1 ] || die "check failed"

    local want have
    want=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n1)
    have=$(rustc --version | awk '{print $2}')
    [ -n "$want" ] || die "Cargo.toml has no rust-version"
    version_ge "$have" "$want" || die "rustc $have is older than rust-version $want"
    echo "toolchain: rustc $have >= rust-version $want"

    # Fails when Cargo.lock would have to change. Resolves for the host platform
    # from the local cache only, so it is quick and needs no network.
    local host err
    host=$(rustc -vV | sed -n 's/^host: //p')
    err=$(mktemp)
    if ! cargo metadata --locked --offline --format-version 1 --filter-platform "$host" \
            >/dev/null 2>"$err"; then
        cat "$err" >&2; rm -f "$err"
        die "Cargo.lock is out of date (or dependencies are not fetched): cargo metadata --locked"
    fi
    rm -f "$err"
    echo "Cargo.lock: in sync with Cargo.toml"

    if [ -f Dockerfile ]; then
        grep -q 'scripts/build-release.sh' Dockerfile \
            || die "Dockerfile does not run scripts/build-release.sh"
        local image_rust
        image_rust=$(sed -n 's/^ARG RUST_VERSION=\([0-9.]*\).*/\1/p' Dockerfile | head -n1)
        [ -n "$image_rust" ] || die "Dockerfile has no ARG RUST_VERSION=x.y pin"
        version_ge "$image_rust" "$want" \
            || die "Dockerfile pins Rust $image_rust, older than rust-version $want"
        echo "Dockerfile: Rust $image_rust image, calls scripts/build-release.sh"
    fi
    echo "build-release --check: OK (nothing built)"
}

case "$mode" in
    check) check ;;
    print|build) build ;;
esac
