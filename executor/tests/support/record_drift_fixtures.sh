#!/usr/bin/env bash
# Records the real Terraform fixtures under executor/tests/fixtures/drift/ that the report
# builder is tested against: terraform + the AWS provider mirror + LocalStack on loopback,
# the example template examples/templates/aws_drift.rb, drift injected out of band with boto3.
#
#   bash executor/tests/support/record_drift_fixtures.sh
#
# Each case directory gets the two states of a saved plan (tfstate-prev.json = before refresh,
# tfstate.json = refreshed; a plan against an empty state has no tfstate-prev) and show.json
# (`terraform show -json` of the plan). A few small .tfplan zips are kept so reading a real plan
# file is tested too. Re-running overwrites the cases; ids, ARNs and timestamps will differ.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT="$ROOT/executor/tests/fixtures/drift"
CACHE="${PANGEA_CACHE_DIR:-$HOME/.cache/pangea-operator}"
# shellcheck disable=SC1091
source "$CACHE/env"
export TF_CLI_CONFIG_FILE="$CACHE/terraformrc"
export TF_IN_AUTOMATION=1

# The secret must appear in the recorded states: the redaction tests look for it.
SECRET="s3cr3t-value"
ROTATED_SECRET="r0tated-0ut-of-band"
export PANGEA_BUCKET_PREFIX="pangea-drift-demo"

WORK=$(mktemp -d)
LS_PID=""
cleanup() {
  if [[ -n "$LS_PID" ]] && kill -0 "$LS_PID" 2>/dev/null; then
    kill "$LS_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$LS_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$LS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf '== %s\n' "$*" >&2; }

free_port() {
  "$PANGEA_LOCALSTACK_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_localstack() {
  PORT=$(free_port)
  mkdir -p "$WORK/ls"
  (cd "$WORK/ls" && GATEWAY_LISTEN="127.0.0.1:$PORT" GATEWAY_SERVER=hypercorn DNS_ADDRESS=0 \
    DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 SERVICES=s3,ec2,iam,route53,sts,ssm \
    FILESYSTEM_ROOT="$WORK/ls/fs" XDG_CACHE_HOME="$WORK/ls/xdg" \
    exec "$PANGEA_LOCALSTACK_PYTHON" -m localstack.runtime.main >"$WORK/ls/ls.log" 2>&1) &
  LS_PID=$!
  for _ in $(seq 1 120); do
    curl -sf "127.0.0.1:$PORT/_localstack/health" >/dev/null && return 0
    sleep 0.5
  done
  cat "$WORK/ls/ls.log" >&2
  echo "LocalStack did not become ready" >&2
  exit 1
}

write_provider_override() {
  "$PANGEA_LOCALSTACK_PYTHON" - "$PORT" >provider_override.tf.json <<'PY'
import json, sys
url = f"http://127.0.0.1:{sys.argv[1]}"
services = ["s3", "ec2", "iam", "route53", "sts", "ssm"]
print(json.dumps({"provider": {"aws": {
    "region": "us-east-1", "access_key": "test", "secret_key": "test",
    "skip_credentials_validation": True, "skip_requesting_account_id": True,
    "skip_metadata_api_check": True, "s3_use_path_style": True,
    "endpoints": [{s: url for s in services}],
}}}, indent=2))
PY
}

tf() { "$PANGEA_TERRAFORM" "$@" -input=false -no-color; }

# Extracts one state from a plan zip, pretty-printed, when the plan holds it.
extract_state() {
  local plan=$1 member=$2 dest=$3
  if unzip -l "$plan" "$member" >/dev/null 2>&1; then
    unzip -p "$plan" "$member" | "$PANGEA_LOCALSTACK_PYTHON" -m json.tool >"$dest"
  fi
}

# record CASE [terraform plan args...]: saves a plan and its states + show.json under OUT/CASE.
record() {
  local case=$1; shift
  local dir="$OUT/$case"
  log "record $case"
  rm -rf "$dir" && mkdir -p "$dir"
  tf plan "$@" -var "app_secret=$SECRET" -out="$WORK/$case.tfplan" >"$WORK/$case.plan.log"
  extract_state "$WORK/$case.tfplan" tfstate-prev "$dir/tfstate-prev.json"
  extract_state "$WORK/$case.tfplan" tfstate "$dir/tfstate.json"
  "$PANGEA_TERRAFORM" show -json "$WORK/$case.tfplan" | "$PANGEA_LOCALSTACK_PYTHON" -m json.tool >"$dir/show.json"
}

keep_plan() { cp "$WORK/$1.tfplan" "$OUT/$1/plan.tfplan"; }

boto() {
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
    ENDPOINT="http://127.0.0.1:$PORT" "$PANGEA_LOCALSTACK_PYTHON" - "$@"
}

inject_drift() {
  log "inject drift: versioning suspended, SG ingress 22 from 0.0.0.0/0, A record changed, logs bucket deleted"
  boto "$PANGEA_BUCKET_PREFIX" <<'PY'
import os, sys, boto3
from botocore.config import Config
prefix, ep = sys.argv[1], os.environ["ENDPOINT"]
s3 = boto3.client("s3", endpoint_url=ep, config=Config(s3={"addressing_style": "path"}))
ec2 = boto3.client("ec2", endpoint_url=ep)
r53 = boto3.client("route53", endpoint_url=ep)

s3.put_bucket_versioning(Bucket=f"{prefix}-artifacts",
                         VersioningConfiguration={"Status": "Suspended"})

group = ec2.describe_security_groups(
    Filters=[{"Name": "group-name", "Values": ["https-internal"]}])["SecurityGroups"][0]
ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
    "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

zone = next(z for z in r53.list_hosted_zones()["HostedZones"]
            if z["Name"].rstrip(".") == "drift-demo.example.com")
r53.change_resource_record_sets(HostedZoneId=zone["Id"], ChangeBatch={"Changes": [{
    "Action": "UPSERT", "ResourceRecordSet": {
        "Name": "app.drift-demo.example.com", "Type": "A", "TTL": 300,
        "ResourceRecords": [{"Value": "10.42.0.99"}]}}]})

logs = f"{prefix}-logs"
for obj in s3.list_objects_v2(Bucket=logs).get("Contents", []):
    s3.delete_object(Bucket=logs, Key=obj["Key"])
s3.delete_bucket(Bucket=logs)
PY
}

rotate_secret() {
  log "inject drift: SSM SecureString value changed out of band"
  boto "/$PANGEA_BUCKET_PREFIX/app/secret" "$ROTATED_SECRET" <<'PY'
import os, sys, boto3
ssm = boto3.client("ssm", endpoint_url=os.environ["ENDPOINT"])
ssm.put_parameter(Name=sys.argv[1], Value=sys.argv[2], Type="SecureString", Overwrite=True)
PY
}

log "compile examples/templates/aws_drift.rb"
(cd "$ROOT" && cargo run -q -p pangea-executor -- compile --out "$WORK/ws" examples/templates/aws_drift.rb)
cd "$WORK/ws/drift_demo"

log "start LocalStack"
start_localstack
write_provider_override
tf init >"$WORK/init.log"

# A normal plan against an empty state: the plan zip has no tfstate-prev.
record empty_state
keep_plan empty_state

log "apply"
tf apply -auto-approve -var "app_secret=$SECRET" >"$WORK/apply.log"
# Right after create, taggable resources refresh as `tags: null -> {}`: noise, not drift.
record fresh_apply -refresh-only

log "settle with a refresh-only apply"
tf apply -refresh-only -auto-approve -var "app_secret=$SECRET" >"$WORK/settle.log"
record clean -refresh-only
keep_plan clean

inject_drift
record drift -refresh-only
keep_plan drift
# The normal plan that would remediate it: pending changes, not drift. Planned twice: the plan
# files differ (timestamps) while the planned changes are the same, which the plan id relies on.
record remediation_plan
record remediation_replan
record replace_plan -replace=aws_route53_record.app

log "remediate"
tf apply -auto-approve -var "app_secret=$SECRET" >"$WORK/remediate.log"
tf apply -refresh-only -auto-approve -var "app_secret=$SECRET" >"$WORK/settle2.log"
record remediated -refresh-only

rotate_secret
record secret_rotated -refresh-only

# Resources created without tags refresh as `tags: null -> {}` right after the create: the
# noise case. The example template tags everything, so a small untagged configuration is used.
log "untagged configuration for the tags noise case"
mkdir -p "$WORK/untagged" && cd "$WORK/untagged"
write_provider_override
cat >main.tf.json <<'JSON'
{
  "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 5.0"}}},
  "variable": {"app_secret": {"type": "string", "sensitive": true}},
  "resource": {
    "aws_vpc": {"plain": {"cidr_block": "10.43.0.0/16"}},
    "aws_security_group": {"plain": {"name": "plain", "vpc_id": "${aws_vpc.plain.id}"}},
    "aws_s3_bucket": {"plain": {"bucket": "pangea-drift-demo-untagged"}},
    "aws_route53_zone": {"plain": {"name": "untagged.example.com"}},
    "aws_ssm_parameter": {"plain": {"name": "/untagged/secret", "type": "SecureString", "value": "${var.app_secret}"}}
  }
}
JSON
tf init >"$WORK/untagged-init.log"
tf apply -auto-approve -var "app_secret=$SECRET" >"$WORK/untagged-apply.log"
record untagged_fresh_apply -refresh-only

ls -la "$OUT"/*
log "done"
