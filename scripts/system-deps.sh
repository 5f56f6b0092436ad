#!/usr/bin/env bash
# Install the system packages the tests (and the local platform) need, when they are missing.
# Usage: scripts/system-deps.sh test|local|image
#   local: prometheus, promtool, alertmanager (the local platform's monitoring stack)
#   test:  the above plus wrk (benchmarks) and chromium (the stress report opened as a person would)
#   image: docker.io (dockerd + /usr/bin/docker) and debootstrap, for `make image-test`. Installing docker.io
#          never starts its service here (policy-rc.d / no init): scripts/image-test.sh starts its own engine.
# Only Debian/Ubuntu (apt) is automated; elsewhere the script says what to install.
set -euo pipefail

# cmd[|other name]:package. Debian's prometheus-alertmanager package installs the binary as prometheus-alertmanager.
case "${1:-test}" in
  local) want=(prometheus:prometheus promtool:prometheus 'alertmanager|prometheus-alertmanager:prometheus-alertmanager') ;;
  test) want=(prometheus:prometheus promtool:prometheus 'alertmanager|prometheus-alertmanager:prometheus-alertmanager' wrk:wrk chromium:chromium) ;;
  # /usr/bin/docker by its path: another `docker` client may come first on PATH.
  image) want=(dockerd:docker.io /usr/bin/docker:docker.io debootstrap:debootstrap) ;;
  *) echo "usage: $0 test|local|image" >&2; exit 2 ;;
esac

missing=()
for pair in "${want[@]}"; do
  cmds=${pair%%:*} pkg=${pair#*:} found=""
  for cmd in ${cmds//|/ }; do command -v "$cmd" >/dev/null 2>&1 && found=1; done
  if [ -z "$found" ]; then
    case " ${missing[*]-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: missing system packages: ${missing[*]}. Install them with your package manager" >&2
  echo "       (or put the commands they provide on PATH), then re-run." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "error: missing system packages: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The Debian packages would start their own services (ports 9090/9093) on systemd hosts; the lab
# runs its own instances under supervisord on separate ports, so leave the system services alone.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
