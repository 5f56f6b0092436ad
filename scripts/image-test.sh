#!/usr/bin/env bash
# make image-test: build app/Dockerfile for real and test its container (tests/image), on a Docker engine of the
# lab's own. Usage: scripts/image-test.sh [extra pytest arguments]
#
# 1. Installs docker.io and debootstrap when missing (scripts/system-deps.sh image).
# 2. Uses the engine that answers on the lab's own socket ($LAB_IMAGE_TEST_DIR/engine/docker.sock), or starts one
#    there, with flags that leave the host alone: no bridge, no iptables/forwarding/masquerading changes, vfs
#    storage, its own data-root, exec-root, pidfile, socket and config file. The engine it started is stopped by
#    its PID when the script exits, also on failure or interrupt. The data-root is kept between runs (it is the
#    image cache that makes a second run take seconds); `make clean` removes it with build/.
# 3. Makes the test base image once per content key (debootstrap trixie minbase with Debian's python3, python3-venv,
#    python-is-python3, ca-certificates, and this machine's CA bundle) and imports it as sre-lab-test-base:<key>.
# 4. Runs pytest -m image tests/image with DOCKER_HOST and LAB_TEST_BASE_IMAGE set: the tests build the image as
#    minikube would and run the container as the rendered Deployment does.
# Nothing is ever pulled: every image reference is local.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
state=${LAB_IMAGE_TEST_DIR:-$root/build/image-test}
mkdir -p "$state"
state=$(cd "$state" && pwd)
engine=$state/engine
sock=$engine/docker.sock
docker=/usr/bin/docker # by its path: another `docker` client may come first on PATH
pytest=${LAB_PYTEST:-$root/.venv/bin/pytest}
suite=${LAB_BASE_SUITE:-trixie}
mirror=${LAB_BASE_MIRROR:-http://deb.debian.org/debian}
packages=python3,python3-venv,python-is-python3,ca-certificates
ca_bundle=/etc/ssl/certs/ca-certificates.crt
# Bump when the way the base is made changes (the content key covers suite, packages and the CA bundle).
recipe=1

die() {
  echo "image-test: error: $*" >&2
  exit 1
}
say() { echo "image-test: $*"; }

# Unix socket paths are limited to 107 bytes; dockerd also puts containerd's socket under the exec-root.
[ ${#engine} -le 60 ] || die "state directory path too long for dockerd's sockets ($engine): set LAB_IMAGE_TEST_DIR to a shorter path"
[ -x "$pytest" ] || die "$pytest not found: run make dev-venv first"

# One run at a time per state directory (the engine and its cache are shared by the runs of this checkout).
exec 9>"$state/lock"
flock -w 1800 9 || die "another make image-test holds $state/lock"

export DOCKER_HOST=unix://$sock
engine_answers() { [ -x "$docker" ] && [ -S "$sock" ] && timeout 10 "$docker" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# dockerd leaves a bind mount of the host's network namespace at <exec-root>/netns/default (and a killed engine may
# leave more): unmount what is mounted under the engine's own folder once no engine of ours runs.
unmount_leftovers() {
  awk -v p="$engine/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount --lazy "$m" || say "could not unmount $m"
  done
}

started_pid=""
stop_engine() {
  local rc=$?
  if [ -n "$started_pid" ]; then
    say "stopping the Docker engine it started (PID $started_pid)"
    kill -TERM "$started_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$started_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$started_pid" 2>/dev/null; then
      say "the engine (PID $started_pid) did not stop within 30 s: SIGKILL"
      kill -KILL "$started_pid" 2>/dev/null || true
    fi
    wait "$started_pid" 2>/dev/null || true
    started_pid=""
    unmount_leftovers
  fi
  exit "$rc"
}
trap stop_engine EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if engine_answers; then
  say "reusing the Docker engine that answers on $sock"
else
  if [ "$(id -u)" -ne 0 ]; then
    die "no Docker engine answers on $sock and starting one (dockerd) needs root. Run make image-test as root (CI does), or start dockerd yourself with the flags in scripts/image-test.sh and -H $DOCKER_HOST."
  fi
  "$root/scripts/system-deps.sh" image ||
    die "docker.io and debootstrap are needed (apt-get install docker.io debootstrap) and could not be installed"
  command -v dockerd >/dev/null || die "dockerd is missing after installing docker.io"
  unmount_leftovers
  mkdir -p "$engine/root" "$engine/exec"
  rm -f "$sock"
  [ -f "$engine/daemon.json" ] || echo '{}' >"$engine/daemon.json" # not the system's /etc/docker/daemon.json
  say "starting a Docker engine of the lab's own (state in $engine, log in $engine/dockerd.log)"
  dockerd \
    --config-file "$engine/daemon.json" \
    --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
    --storage-driver=vfs \
    --data-root "$engine/root" --exec-root "$engine/exec" --pidfile "$engine/dockerd.pid" \
    -H "$DOCKER_HOST" >>"$engine/dockerd.log" 2>&1 &
  started_pid=$!
  for _ in $(seq 1 300); do
    engine_answers && break
    kill -0 "$started_pid" 2>/dev/null || die "dockerd exited at start-up; last lines of $engine/dockerd.log: $(tail -n 15 "$engine/dockerd.log")"
    sleep 0.1
  done
  engine_answers || die "dockerd (PID $started_pid) did not answer on $sock within 30 s; see $engine/dockerd.log"
  say "engine $("$docker" version --format '{{.Server.Version}}') up (PID $started_pid)"
fi

# Containers a crashed earlier run left behind (only this lab's, by label, on this lab's engine).
leftovers=$("$docker" ps -aq --filter label=sre-lab.image-test)
[ -z "$leftovers" ] || "$docker" rm -f $leftovers >/dev/null

# ---- the test base image, cached by a content key ----
[ -r "$ca_bundle" ] || die "$ca_bundle is missing: the test base carries this machine's CA bundle (apt-get install ca-certificates)"
key=$( {
  echo "recipe=$recipe suite=$suite variant=minbase include=$packages"
  sha256sum <"$ca_bundle"
} | sha256sum | cut -c1-16)
base=sre-lab-test-base:$key
if "$docker" image inspect "$base" >/dev/null 2>&1; then
  say "reusing the test base image $base"
else
  [ "$(id -u)" -eq 0 ] || die "the test base image $base must be made with debootstrap, which needs root"
  command -v debootstrap >/dev/null || "$root/scripts/system-deps.sh" image ||
    die "debootstrap is missing (apt-get install debootstrap)"
  rootfs=$state/base-rootfs
  rm -rf "$rootfs"
  say "making the test base image $base (debootstrap $suite minbase from $mirror; about 30 s)"
  t0=$(date +%s)
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $state/debootstrap.log: $(tail -n 5 "$state/debootstrap.log")"
  # TLS to the package registries is re-signed by an authority only this machine's bundle trusts.
  install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar --numeric-owner -C "$rootfs" -c . | "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' - "$base" >/dev/null
  rm -rf "$rootfs"
  say "made $base in $(($(date +%s) - t0)) s"
  # Older bases of this lab (other keys) are no longer used.
  for old in $("$docker" image ls sre-lab-test-base --format '{{.Repository}}:{{.Tag}}'); do
    [ "$old" = "$base" ] || "$docker" image rm "$old" >/dev/null 2>&1 || true
  done
fi

export LAB_TEST_BASE_IMAGE=$base LAB_IMAGE_TEST_DIR=$state
set +e
# -n 0: one process (the tests share one engine and one built image, as session fixtures).
"$pytest" -n 0 -m image "$root/tests/image" "$@"
rc=$?
set -e
exit "$rc"
