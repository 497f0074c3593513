# Sourced by the end-to-end scripts: $work, a scratch directory, and $pids, the background
# processes the script starts; at exit every one of them is stopped and $work removed.

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
