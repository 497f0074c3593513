# Sourced by run.sh and test.sh: installs the Debian packages given as arguments that are
# missing (as root, or through sudo).

# What building PhotonCloud needs.
BUILD_PACKAGES=(
  clang libclang-dev                   # RocksDB's build (bindgen)
  protobuf-compiler libprotobuf-dev    # etcd-client's generated gRPC code
)

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
