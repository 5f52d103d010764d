#!/usr/bin/env bash
# The README walkthrough, runnable against a running ec2d (default http://localhost:4566).
# Needs: the aws CLI, awslocal (pip install awscli-local), docker, and any local image to use
# as an AMI (default: ec2d-test/busybox:latest, built by tests/support/build-test-images.sh).
#
#   ./examples/walkthrough.sh [endpoint] [source-image]
set -euo pipefail

ENDPOINT="${1:-http://localhost:4566}"
SOURCE_IMAGE="${2:-ec2d-test/busybox:latest}"
export AWS_ENDPOINT_URL="$ENDPOINT" AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
ec2() { awslocal ec2 "$@"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step docker tag "$SOURCE_IMAGE" localstack-ec2/test-ami:ami-000001
docker tag "$SOURCE_IMAGE" localstack-ec2/test-ami:ami-000001
sleep 1 # the image event reaches ec2d's catalog within milliseconds

step awslocal ec2 describe-images --filters Name=tag:ec2_vm_manager,Values=docker
ec2 describe-images --filters Name=tag:ec2_vm_manager,Values=docker \
    --query 'Images[].{Id:ImageId,Name:Name,State:State}' --output table

step awslocal ec2 run-instances --image-id ami-000001 --count 2
ids=$(ec2 run-instances --image-id ami-000001 --count 2 --query 'Instances[].InstanceId' --output text)
echo "$ids"
first=${ids%%[[:space:]]*}

step awslocal ec2 wait instance-running
ec2 wait instance-running --instance-ids $ids
ec2 describe-instances --instance-ids $ids --query 'Reservations[].Instances[].[InstanceId,State.Name,PrivateIpAddress]' --output table
docker ps --filter label=ec2d.managed --format '{{.Names}}  {{.Status}}'

step awslocal ec2 stop-instances --instance-ids "$first"
ec2 stop-instances --instance-ids "$first" --query 'StoppingInstances[0].[PreviousState.Name,CurrentState.Name]' --output text
ec2 wait instance-stopped --instance-ids "$first"
docker inspect -f '{{.Name}} paused={{.State.Paused}}' "localstack-ec2.$first"

step awslocal ec2 start-instances --instance-ids "$first"
ec2 start-instances --instance-ids "$first" --query 'StartingInstances[0].[PreviousState.Name,CurrentState.Name]' --output text
ec2 wait instance-running --instance-ids "$first"

step awslocal ec2 create-image --instance-id "$first" --name my-snap
ami=$(ec2 create-image --instance-id "$first" --name "my-snap-$$" --query ImageId --output text)
ec2 wait image-available --image-ids "$ami"
docker image ls "localstack-ec2/my-snap-$$"

step awslocal ec2 run-instances --image-id "$ami"
snap=$(ec2 run-instances --image-id "$ami" --query 'Instances[0].InstanceId' --output text)
ec2 wait instance-running --instance-ids "$snap"

step awslocal ec2 terminate-instances --instance-ids $ids $snap
ec2 terminate-instances --instance-ids $ids "$snap" --query 'TerminatingInstances[].[InstanceId,CurrentState.Name]' --output text
ec2 wait instance-terminated --instance-ids $ids "$snap"

step awslocal ec2 copy-image --source-image-id "$ami" --source-region us-east-1 --name my-snap-eu --region eu-west-1
copy=$(ec2 copy-image --source-image-id "$ami" --source-region "$AWS_DEFAULT_REGION" --name "my-snap-eu-$$" \
    --region eu-west-1 --query ImageId --output text)
ec2 wait image-available --image-ids "$copy" --region eu-west-1
docker image ls "localstack-ec2/my-snap-eu-$$"

step awslocal ec2 deregister-image --image-id "$ami"
ec2 deregister-image --image-id "$ami"
ec2 deregister-image --image-id "$copy" --region eu-west-1
# Gone for clients at once; the tags (and the committed image with the last one) follow.
for tag in "localstack-ec2/my-snap-$$:$ami" "localstack-ec2/my-snap-eu-$$:$copy"; do
    for _ in $(seq 50); do docker image inspect "$tag" >/dev/null 2>&1 || break; sleep 0.2; done
    if docker image inspect "$tag" >/dev/null 2>&1; then echo "unexpected: $tag is still there" >&2; exit 1; fi
done

step awslocal ec2 run-instances --image-id ami-12345678
if ec2 run-instances --image-id ami-12345678 2>&1; then
    echo "unexpected: a mocked AMI launched" >&2
    exit 1
fi

step awslocal ec2 describe-images --owners amazon --filters Name=name,Values=al2023-ami-*
ec2 describe-images --owners amazon --filters 'Name=name,Values=al2023-ami-*' \
    --query 'Images[].[ImageId,Name,Architecture]' --output table

docker rmi localstack-ec2/test-ami:ami-000001 >/dev/null
echo; echo "walkthrough complete"
