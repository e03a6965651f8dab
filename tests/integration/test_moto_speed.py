"""The suite's quicker paths through moto (tests/moto_speed.py) give moto's answers: a
projection of top-level names, of nested paths and of binary values; a delayed and an
in-flight SQS message stay hidden until their time, then come back."""

from __future__ import annotations

import boto3

from tests.polling import wait_until

TABLE = "projections"


def test_a_projection_returns_exactly_the_attributes_it_names(aws):
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
    )  # fmt: skip
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
