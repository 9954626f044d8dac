"""Out-of-band changes to cloud resources, made the way a person with console access would:
straight through the AWS API (boto3), behind Terraform's back. Used by e2e tests and the demo.

    python aws_drift.py suspend-versioning BUCKET
    python aws_drift.py open-ingress GROUP_NAME PORT CIDR
    python aws_drift.py set-a-record ZONE_NAME RECORD_NAME VALUE
    python aws_drift.py delete-bucket BUCKET
    python aws_drift.py describe-ingress GROUP_NAME        # prints the rules as JSON
    python aws_drift.py get-versioning BUCKET              # prints Enabled/Suspended
    python aws_drift.py list-buckets                       # prints one name per line
    python aws_drift.py count-groups GROUP_NAME            # prints how many exist
    python aws_drift.py count-vpcs CIDR                    # prints how many exist
    python aws_drift.py count-zones ZONE_NAME              # prints how many exist
    python aws_drift.py count-parameters NAME              # prints how many exist (0 or 1)
    python aws_drift.py count-parameters-under PREFIX      # prints how many names start so
    python aws_drift.py put-parameter NAME                 # a SecureString made outside Terraform
    python aws_drift.py delete-all KIND VALUE              # vpc CIDR | group NAME | zone NAME
    python aws_drift.py create-state-store BUCKET TABLE    # state bucket + DynamoDB lock table
    python aws_drift.py list-objects BUCKET
    python aws_drift.py scan-locks TABLE                   # held locks, one per line

The endpoint comes from AWS_ENDPOINT_URL, credentials from the usual AWS_* variables.
"""

import json
import os
import sys

import boto3


def client(service):
    return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def suspend_versioning(bucket):
    client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def group_id(name):
    groups = client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    return groups["SecurityGroups"][0]["GroupId"]


def open_ingress(name, port, cidr):
    client("ec2").authorize_security_group_ingress(
        GroupId=group_id(name), IpProtocol="tcp", FromPort=int(port), ToPort=int(port), CidrIp=cidr
    )


def describe_ingress(name):
    groups = client("ec2").describe_security_groups(GroupIds=[group_id(name)])
    print(json.dumps(groups["SecurityGroups"][0]["IpPermissions"]))


def set_a_record(zone_name, record_name, value):
    r53 = client("route53")
    zones = r53.list_hosted_zones_by_name(DNSName=zone_name)["HostedZones"]
    zone = next(z for z in zones if z["Name"].rstrip(".") == zone_name.rstrip("."))
    r53.change_resource_record_sets(
        HostedZoneId=zone["Id"],
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": record_name, "Type": "A", "TTL": 300, "ResourceRecords": [{"Value": value}]}}]},
    )


def delete_bucket(bucket):
    s3 = client("s3")
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=bucket)


def create_state_store(bucket, table):
    """A bucket for Terraform state and a DynamoDB lock table (as a platform team pre-creates)."""
    client("s3").create_bucket(Bucket=bucket)
    client("dynamodb").create_table(
        TableName=table, KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")


def list_objects(bucket):
    for obj in client("s3").list_objects_v2(Bucket=bucket).get("Contents", []):
        print(obj["Key"])


def scan_locks(table):
    """Lock entries currently held (terraform also keeps a digest item per state: not a lock)."""
    for item in client("dynamodb").scan(TableName=table)["Items"]:
        if "Info" in item:
            print(item["LockID"]["S"])


def count_groups(name):
    groups = client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    print(len(groups["SecurityGroups"]))


def count_vpcs(cidr):
    vpcs = client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": [cidr]}])
    print(len(vpcs["Vpcs"]))


def count_zones(name):
    zones = client("route53").list_hosted_zones()["HostedZones"]
    print(sum(1 for z in zones if z["Name"].rstrip(".") == name.rstrip(".")))


def count_parameters(name):
    found = client("ssm").describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}])
    print(len(found["Parameters"]))


def count_parameters_under(prefix):
    pages = client("ssm").get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [prefix]}])
    print(sum(len(page["Parameters"]) for page in pages))


def put_parameter(name):
    client("ssm").put_parameter(Name=name, Type="SecureString", Value="made-outside-terraform")


def delete_all(kind, value):
    """Deletes every object of an identity: how a person removes an orphan left outside state."""
    ec2 = client("ec2")
    if kind == "vpc":
        for vpc in ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": [value]}])["Vpcs"]:
            ec2.delete_vpc(VpcId=vpc["VpcId"])
    elif kind == "group":
        for group in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [value]}])["SecurityGroups"]:
            ec2.delete_security_group(GroupId=group["GroupId"])
    elif kind == "zone":
        r53 = client("route53")
        for zone in r53.list_hosted_zones()["HostedZones"]:
            if zone["Name"].rstrip(".") == value.rstrip("."):
                r53.delete_hosted_zone(Id=zone["Id"])
    else:
        sys.exit(f"unknown kind {kind}")


def get_versioning(bucket):
    print(client("s3").get_bucket_versioning(Bucket=bucket).get("Status", "Off"))


def list_buckets():
    for bucket in client("s3").list_buckets()["Buckets"]:
        print(bucket["Name"])


COMMANDS = {
    "get-versioning": get_versioning,
    "count-groups": count_groups,
    "count-vpcs": count_vpcs,
    "count-zones": count_zones,
    "count-parameters": count_parameters,
    "count-parameters-under": count_parameters_under,
    "delete-all": delete_all,
    "put-parameter": put_parameter,
    "create-state-store": create_state_store,
    "list-objects": list_objects,
    "scan-locks": scan_locks,
    "list-buckets": list_buckets,
    "suspend-versioning": suspend_versioning,
    "open-ingress": open_ingress,
    "describe-ingress": describe_ingress,
    "set-a-record": set_a_record,
    "delete-bucket": delete_bucket,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
