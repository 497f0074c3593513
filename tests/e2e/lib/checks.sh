# Sourced by the end-to-end scripts: free ports and the checks that count passes and failures.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

passed=0
failed=0
check() { # name expected actual
  if [ "$2" == "$3" ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); printf 'FAIL %s\n  expected: %q\n  actual:   %q\n' "$1" "$2" "$3"; fi
}
contains() { # name needle haystack
  if [[ "$3" == *"$2"* ]]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); printf 'FAIL %s\n  expected to contain: %q\n  actual: %q\n' "$1" "$2" "$3"; fi
}
# Prints the tally as "NAME: N passed, M failed" and fails when anything did.
summary() { # name
  echo "$1: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
