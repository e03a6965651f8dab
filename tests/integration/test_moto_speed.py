"""The quicker paths through moto (ops/moto_speed.py) give moto's answers: a
projection of top-level names, of nested paths and of binary values; a delayed and an
in-flight SQS message stay hidden until their time, then come back; every item operation's
answer, written directly, is what moto's shape walk writes; a parsed UpdateExpression
serves again."""

from __future__ import annotations

import boto3
import pytest

from ops import moto_speed
from tests.polling import wait_until

TABLE = "projections"


def _table(client, sort_key: str | None = None) -> None:
    """TABLE, keyed by a string `pk` (and a `sk` of type `sort_key`)."""
    keys = [("pk", "HASH", "S"), *([("sk", "RANGE", sort_key)] if sort_key else [])]
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": n, "KeyType": k} for n, k, _ in keys],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, _, t in keys],
    )  # fmt: skip


def test_a_projection_returns_exactly_the_attributes_it_names(aws):
    client = boto3.client("dynamodb")
    _table(client)
    item = {"pk": {"S": "a"}, "n": {"N": "1.50"}, "s": {"S": "x"}, "b": {"B": b"\x00\xff"},
            "tags": {"SS": ["p", "q"]}, "m": {"M": {"deep": {"N": "7"}, "other": {"S": "y"}}}}  # fmt: skip
    client.put_item(TableName=TABLE, Item=item)

    def get(projection: str) -> dict:
        return client.get_item(TableName=TABLE, Key={"pk": {"S": "a"}}, ConsistentRead=True,
                               ProjectionExpression=projection)["Item"]  # fmt: skip

    assert get("n, tags, absent") == {"n": {"N": "1.50"}, "tags": {"SS": ["p", "q"]}}
    assert get("s") == {"s": {"S": "x"}}
    assert get("b") == {"b": {"B": b"\x00\xff"}}  # binary: moto's own way
    assert get("m.deep, s") == {"m": {"M": {"deep": {"N": "7"}}}, "s": {"S": "x"}}  # nested


def test_delayed_and_in_flight_messages_are_hidden_until_their_time(aws):
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="visibility")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody="now")

    def bodies(**extra) -> list[str]:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **extra)
        return [m["Body"] for m in answer.get("Messages", [])]

    assert bodies(VisibilityTimeout=1) == ["now"]  # "later" is delayed, "now" is in flight
    assert bodies() == []
    seen: list[str] = []
    wait_until(lambda: seen.extend(bodies(VisibilityTimeout=30)) or len(seen) == 2, 10,
               "both messages to come back", every=0.1)  # fmt: skip
    assert sorted(seen) == ["later", "now"]


def test_every_item_operations_answer_is_what_motos_shape_walk_writes(aws, monkeypatch):
    monkeypatch.setattr(moto_speed, "CHECK", True)
    monkeypatch.setattr(moto_speed, "checked", [])
    client = boto3.client("dynamodb")
    _table(client, sort_key="N")
    every_type = {"s": {"S": "x"}, "empty": {"S": ""}, "n": {"N": "-1.50"}, "yes": {"BOOL": True},
                  "no": {"BOOL": False}, "null": {"NULL": True}, "ss": {"SS": ["p", "q"]},
                  "ns": {"NS": ["1", "2.5"]}, "l": {"L": [{"S": "a"}, {"N": "1"}, {"L": []}]},
                  "m": {"M": {"deep": {"M": {"n": {"N": "7"}}}, "none": {"M": {}}}}}  # fmt: skip
    key = lambda i: {"pk": {"S": "a"}, "sk": {"N": str(i)}}  # noqa: E731
    capacity = {"ReturnConsumedCapacity": "TOTAL"}
    for i in range(5):
        client.put_item(TableName=TABLE, Item={**key(i), **every_type}, **capacity)
    client.put_item(TableName=TABLE, Item={**key(0), "s": {"S": "y"}}, ReturnValues="ALL_OLD")
    client.get_item(TableName=TABLE, Key=key(1), ConsistentRead=True, **capacity)
    client.get_item(TableName=TABLE, Key=key(9))  # no item
    client.get_item(TableName=TABLE, Key=key(1), ProjectionExpression="m.deep, l[0], ns")
    for returns in ("NONE", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW", "ALL_OLD"):
        client.update_item(TableName=TABLE, Key=key(2), UpdateExpression="SET n = n + :one, t = :t",
                           ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"S": returns}},
                           ReturnValues=returns)  # fmt: skip
    client.delete_item(TableName=TABLE, Key=key(3), ReturnValues="ALL_OLD", **capacity)
    pages = client.get_paginator("query").paginate(
        TableName=TABLE, KeyConditionExpression="pk = :a", Limit=2,
        ExpressionAttributeValues={":a": {"S": "a"}}, **capacity)  # fmt: skip
    assert sum(len(page["Items"]) for page in pages) == 4
    client.query(TableName=TABLE, KeyConditionExpression="pk = :a", Select="COUNT",
                 ExpressionAttributeValues={":a": {"S": "a"}})  # fmt: skip
    client.scan(TableName=TABLE, FilterExpression="yes = :t",
                ExpressionAttributeValues={":t": {"BOOL": True}})  # fmt: skip
    client.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": {**key(7), **every_type}}},
                                                  {"DeleteRequest": {"Key": key(4)}}]})  # fmt: skip
    client.batch_get_item(RequestItems={TABLE: {"Keys": [key(1), key(7), key(8)]}})
    client.transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE, "Key": key(1), "UpdateExpression": "REMOVE m"}},
        {"ConditionCheck": {"TableName": TABLE, "Key": key(2), "ConditionExpression": "attribute_exists(n)"}},
    ])  # fmt: skip
    client.transact_get_items(TransactItems=[{"Get": {"TableName": TABLE, "Key": key(1)}},
                                             {"Get": {"TableName": TABLE, "Key": key(9)}}])  # fmt: skip
    assert set(moto_speed.checked) == {
        "PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchWriteItem",
        "BatchGetItem", "TransactWriteItems", "TransactGetItems",
    }  # fmt: skip


def test_a_failed_item_operation_and_a_blob_are_answered_by_motos_shape_walk(aws, monkeypatch):
    monkeypatch.setattr(moto_speed, "CHECK", True)
    monkeypatch.setattr(moto_speed, "checked", [])
    client = boto3.client("dynamodb")
    _table(client)
    client.put_item(TableName=TABLE, Item={"pk": {"S": "b"}, "blob": {"B": b"\x00\xff"}})
    assert client.get_item(TableName=TABLE, Key={"pk": {"S": "b"}})["Item"]["blob"] == {
        "B": b"\x00\xff"
    }
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(TableName=TABLE, Item={"pk": {"S": "b"}},
                        ConditionExpression="attribute_not_exists(pk)")  # fmt: skip
    # The blob's GetItem went moto's way (only the PutItem, of no answer, was written here).
    assert moto_speed.checked == ["PutItem"]


def test_one_parsed_update_expression_serves_every_update_of_it(aws):
    client = boto3.client("dynamodb")
    _table(client)
    for i in range(3):
        client.update_item(TableName=TABLE, Key={"pk": {"S": "c"}},
                           UpdateExpression="ADD hits :one SET #last = :i",
                           ExpressionAttributeNames={"#last": "last"},
                           ExpressionAttributeValues={":one": {"N": "1"}, ":i": {"N": str(i)}})  # fmt: skip
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": "c"}})["Item"]
    assert item == {"pk": {"S": "c"}, "hits": {"N": "3"}, "last": {"N": "2"}}
    with pytest.raises(client.exceptions.ClientError, match="Invalid UpdateExpression"):
        client.update_item(TableName=TABLE, Key={"pk": {"S": "c"}}, UpdateExpression="SET = :i",
                           ExpressionAttributeValues={":i": {"N": "1"}})  # fmt: skip
