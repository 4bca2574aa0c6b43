#!/usr/bin/env bash
# Deploy VERSION of humanseg to one EC2 instance through SSM Run Command.
#
#   scripts/deploy-ssm.sh INSTANCE_ID VERSION [APP_DIR]
#
# On the host (APP_DIR, default /opt/humanseg, holding the .env made from
# .env.example): writes this checkout's compose.yaml, sets IMAGE_TAG=VERSION in
# .env, logs Docker in to the ECR registry named by WEB_IMAGE, then runs
# `docker compose pull && docker compose up -d`. Needs AWS credentials with
# ssm:SendCommand / ssm:GetCommandInvocation (docs/deploy.md).
set -euo pipefail

instance_id=${1:?usage: deploy-ssm.sh INSTANCE_ID VERSION [APP_DIR]}
version=${2:?usage: deploy-ssm.sh INSTANCE_ID VERSION [APP_DIR]}
app_dir=${3:-/opt/humanseg}
timeout_s=${DEPLOY_TIMEOUT_SECONDS:-900}

# Only released tags: this string ends up in a shell on the host.
if [[ ! $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+([.-][0-9A-Za-z.-]+)?$ ]]; then
  echo "refusing to deploy '$version': expected a release tag like v1.2.3" >&2
  exit 2
fi
if [[ ! $app_dir =~ ^/[A-Za-z0-9/._-]+$ ]]; then
  echo "refusing APP_DIR '$app_dir'" >&2
  exit 2
fi

here=$(cd "$(dirname "$0")/.." && pwd)
compose_b64=$(base64 -w0 "$here/compose.yaml")

read -r -d '' remote <<REMOTE || true
set -euo pipefail
cd '$app_dir'
test -f .env || { echo 'missing $app_dir/.env (cp .env.example .env)'; exit 1; }
echo '$compose_b64' | base64 -d > compose.yaml.new && mv compose.yaml.new compose.yaml
if grep -q '^IMAGE_TAG=' .env; then sed -i 's/^IMAGE_TAG=.*/IMAGE_TAG=$version/' .env; else echo 'IMAGE_TAG=$version' >> .env; fi
registry=\$(sed -n 's/^WEB_IMAGE=\([^/]*\)\/.*/\1/p' .env)
region=\$(echo "\$registry" | cut -d. -f4)
if [ -n "\$registry" ]; then aws ecr get-login-password --region "\$region" | docker login --username AWS --password-stdin "\$registry"; fi
docker compose pull && docker compose up -d --no-build --remove-orphans
docker compose ps
REMOTE

params=$(python3 -c 'import json, sys; print(json.dumps({"commands": [sys.stdin.read()], "executionTimeout": [sys.argv[1]]}))' "$timeout_s" <<<"$remote")

command_id=$(aws ssm send-command \
  --instance-ids "$instance_id" \
  --document-name AWS-RunShellScript \
  --comment "humanseg deploy $version" \
  --parameters "$params" \
  --query Command.CommandId --output text)
echo "ssm command $command_id: deploying $version to $instance_id:$app_dir"

deadline=$((SECONDS + timeout_s + 60))
status=Pending
while (( SECONDS < deadline )); do
  sleep 10
  status=$(aws ssm get-command-invocation --command-id "$command_id" --instance-id "$instance_id" \
    --query Status --output text 2>/dev/null || echo Pending)
  case $status in
    Pending|InProgress|Delayed) continue ;;
    *) break ;;
  esac
done

aws ssm get-command-invocation --command-id "$command_id" --instance-id "$instance_id" \
  --query '[StandardOutputContent, StandardErrorContent]' --output text || true
echo "status: $status"
[[ $status == Success ]]
