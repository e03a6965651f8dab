"""Provisioning an existing stage adds the indexes a newer release queries."""

from __future__ import annotations

import boto3

from chalicelib.store.models import Job
from ops import provision


def test_an_existing_jobs_table_gets_the_waiting_jobs_index(aws):
    ddb = boto3.client("dynamodb")
    table = Job.Meta.table_name
    ddb.delete_table(TableName=table)
    old = Job._get_schema()
    indexes = [i for i in old["global_secondary_indexes"] if i["index_name"] != "kind-queued-index"]
    ddb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=old["key_schema"],
        AttributeDefinitions=[d for d in old["attribute_definitions"]
                              if d["AttributeName"] != "queued_due"],
        GlobalSecondaryIndexes=[
            {"IndexName": i["index_name"], "KeySchema": i["key_schema"],
             "Projection": i["projection"]}
            for i in indexes
        ],
    )  # fmt: skip
    provision.provision(stage="local", log=lambda _msg: None)
    names = {
        i["IndexName"]
        for i in ddb.describe_table(TableName=table)["Table"]["GlobalSecondaryIndexes"]
    }
    assert "kind-queued-index" in names and "kind-lease-index" in names
