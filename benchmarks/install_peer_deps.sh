#!/usr/bin/env bash
# Installs what benchmarks/torch_candidate_peer.py needs from Debian:
#   python3-torch         PyTorch for Debian's /usr/bin/python3
#   libopenblas0-pthread  an optimized BLAS behind libblas.so.3 (without it
#                         torch falls back to the slow reference BLAS)
# Idempotent: installs only what is missing and says nothing when everything
# is already there. Run as root (it calls apt-get). Exits non-zero if
# `/usr/bin/python3 -c "import torch"` does not work afterwards.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
readonly packages=(python3-torch libopenblas0-pthread)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install_peer_deps.sh: missing ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "install_peer_deps.sh: installing ${missing[*]}" >&2
  # Refresh the lists only when the archive does not know a package yet.
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

if ! /usr/bin/python3 -c "import torch" >/dev/null 2>&1; then
  echo "install_peer_deps.sh: /usr/bin/python3 cannot import torch:" >&2
  /usr/bin/python3 -c "import torch" >&2 || true
  exit 1
fi
if ((${#missing[@]} > 0)); then
  blas=$(ldconfig -p | awk '/libblas\.so\.3 /{print $NF; exit}')
  blas=$(readlink -f "$blas" 2>/dev/null || true)
  echo "install_peer_deps.sh: torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')," \
    "libblas.so.3 -> ${blas:-?}" >&2
fi
