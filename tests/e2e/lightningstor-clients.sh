#!/usr/bin/env bash
# lightningstor driven by the S3 clients people use, with their default settings: aws-cli and
# boto3 (PyPI), rclone and s3cmd (Debian). Buckets, small and multipart-sized uploads, listing,
# sync, presigned URLs through curl, deletes; contents verified by checksum. Then photonctl
# storage against the admin gRPC API.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib/build.sh
bin=target/debug/lightningstor
photonctl=target/debug/photonctl
source tests/e2e/lib/checks.sh
source scripts/lib/packages.sh
python=$(ensure_s3_python_clients)
work=$(mktemp -d)
s3_port=$(free_port)
grpc_port=$(free_port)
admin_port=$(free_port)
endpoint="http://127.0.0.1:$s3_port"
export AWS_ACCESS_KEY_ID=AKIAE2ECLIENTS000001 AWS_SECRET_ACCESS_KEY=e2e/secret+key0000000000000000000000000
export AWS_DEFAULT_REGION=us-east-1
# rclone reads AWS_CA_BUNDLE even for plain HTTP and fails on it; nothing here uses TLS.
unset AWS_CA_BUNDLE

"$bin" --component-id e2e-lightningstor --data-dir "$work/data" --metadata-dir "$work/meta" \
  --s3-addr "127.0.0.1:$s3_port" --grpc-addr "127.0.0.1:$grpc_port" --admin-api-addr "127.0.0.1:$admin_port" \
  --set "standalone.auth.access_key=$AWS_ACCESS_KEY_ID" --set "standalone.auth.secret_key=$AWS_SECRET_ACCESS_KEY" \
  >"$work/lightningstor.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$admin_port/health" >/dev/null && break; sleep 0.1; done

sum() { sha256sum "$1" | cut -d' ' -f1; }
head -c $((20 * 1024 * 1024 + 12345)) /dev/urandom >"$work/big"   # above every client's multipart threshold
echo "small object" >"$work/small"
mkdir -p "$work/tree/a/b" && echo one >"$work/tree/a/one" && echo two >"$work/tree/a/b/two" && echo "plus&equals=" >"$work/tree/odd +&= name"

# aws-cli
aws=("$python" -m awscli --endpoint-url "$endpoint")
check "aws mb" "make_bucket: clients" "$("${aws[@]}" s3 mb s3://clients)"
"${aws[@]}" s3 cp --only-show-errors "$work/big" s3://clients/aws/big
"${aws[@]}" s3 cp --only-show-errors "$work/small" s3://clients/aws/small
"${aws[@]}" s3 cp --only-show-errors s3://clients/aws/big "$work/big.aws"
check "aws cp multipart round trip" "$(sum "$work/big")" "$(sum "$work/big.aws")"
contains "aws multipart etag" '-3\"' "$("${aws[@]}" s3api head-object --bucket clients --key aws/big)"
"${aws[@]}" s3 sync --only-show-errors "$work/tree" s3://clients/aws/tree
listing=$("${aws[@]}" s3 ls --recursive s3://clients/aws/tree/)
contains "aws sync nested key" "aws/tree/a/b/two" "$listing"
contains "aws sync odd key" "aws/tree/odd +&= name" "$listing"
check "aws sync again uploads nothing" "" "$("${aws[@]}" s3 sync "$work/tree" s3://clients/aws/tree)"
url=$("${aws[@]}" s3 presign s3://clients/aws/small --expires-in 300)
check "presigned URL through curl" "small object" "$(curl -fsS "$url")"
"${aws[@]}" s3 rm --only-show-errors s3://clients/aws/small
check "aws rm" "404" "$(curl -s -o /dev/null -w '%{http_code}' "$url")"

# boto3
boto3_result=$("$python" - "$endpoint" "$work/big" 2>&1 <<'PY' || true
import hashlib, sys
import boto3

endpoint, big = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint)
s3.put_object(Bucket="clients", Key="boto/hello", Body=b"hello boto", Metadata={"team": "ops"})
got = s3.get_object(Bucket="clients", Key="boto/hello")
assert got["Body"].read() == b"hello boto"
assert got["Metadata"] == {"team": "ops"}, got["Metadata"]
s3.upload_file(big, "clients", "boto/big")  # s3transfer: multipart with its default checksums
s3.download_file("clients", "boto/big", big + ".boto")
with open(big, "rb") as a, open(big + ".boto", "rb") as b:
    assert hashlib.sha256(a.read()).digest() == hashlib.sha256(b.read()).digest()
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="clients", Prefix="boto/")["Contents"]]
assert keys == ["boto/big", "boto/hello"], keys
url = s3.generate_presigned_url("get_object", Params={"Bucket": "clients", "Key": "boto/hello"})
import urllib.request
assert urllib.request.urlopen(url).read() == b"hello boto"
s3.delete_objects(Bucket="clients", Delete={"Objects": [{"Key": "boto/hello"}]})
print("boto3 ok")
PY
)
check "boto3" "boto3 ok" "$boto3_result"

# rclone
export RCLONE_CONFIG_LS_TYPE=s3 RCLONE_CONFIG_LS_PROVIDER=Other RCLONE_CONFIG_LS_ENDPOINT="$endpoint"
export RCLONE_CONFIG_LS_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_LS_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
rc() { rclone --config /dev/null -q "$@"; }
rc copy "$work/tree" ls:clients/rclone
check "rclone check" "0" "$(rc check "$work/tree" ls:clients/rclone >/dev/null 2>&1; echo $?)"
rc copyto "$work/big" ls:clients/rclone-big
check "rclone multipart round trip" "$(sum "$work/big")" "$(rc cat ls:clients/rclone-big | sha256sum | cut -d' ' -f1)"
rc delete ls:clients/rclone
check "rclone delete" "" "$(rc ls ls:clients/rclone)"

# s3cmd, configured as for MinIO: its default bucket_location "US" is not a valid SigV4 region
# name and is refused (see docs/lightningstor.md).
cat >"$work/s3cfg" <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = 127.0.0.1:$s3_port
host_bucket = 127.0.0.1:$s3_port
use_https = False
bucket_location = us-east-1
CFG
s3c() { s3cmd -c "$work/s3cfg" --no-progress "$@"; }
s3c mb s3://s3cmd-bucket >/dev/null
s3c put "$work/big" s3://s3cmd-bucket/big >/dev/null
s3c get --force s3://s3cmd-bucket/big "$work/big.s3cmd" >/dev/null
check "s3cmd multipart round trip" "$(sum "$work/big")" "$(sum "$work/big.s3cmd")"
contains "s3cmd ls" "s3://s3cmd-bucket/big" "$(s3c ls s3://s3cmd-bucket)"
s3c del s3://s3cmd-bucket/big >/dev/null
s3c rb s3://s3cmd-bucket >/dev/null
check "s3cmd rb" "" "$(s3c ls | grep s3cmd-bucket || true)"

# photonctl against the admin gRPC API
buckets=$("$photonctl" storage buckets --endpoint "http://127.0.0.1:$grpc_port")
contains "photonctl storage buckets" "clients" "$buckets"
usage=$("$photonctl" storage usage --endpoint "http://127.0.0.1:$grpc_port" --output json)
contains "photonctl storage usage" "\"buckets\": 1" "$usage"

summary "lightningstor clients"
