"""The suite's cheaper transaction backup for moto (tests/moto_transactions.py) keeps
DynamoDB's all-or-nothing: a cancelled transaction leaves every item it named as it was."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

TABLE = "all-or-nothing"


@pytest.fixture
def table(aws) -> str:
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
    )  # fmt: skip
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    client.put_item(TableName=TABLE, Item={"pk": {"S": "a"}, "sk": {"S": "2"}, "n": {"N": "5"}})
    return TABLE


def items() -> dict[str, dict]:
    found = boto3.client("dynamodb").scan(TableName=TABLE)["Items"]
    return {i["sk"]["S"]: i for i in found}


def key(sk: str) -> dict:
    return {"pk": {"S": "a"}, "sk": {"S": sk}}


def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(table):
    before = items()
    with pytest.raises(ClientError, match="TransactionCanceled"):
        boto3.client("dynamodb").transact_write_items(TransactItems=[
            {"Update": {"TableName": TABLE, "Key": key("1"), "UpdateExpression": "SET n = n + :o",
                        "ExpressionAttributeValues": {":o": {"N": "1"}}}},
            {"Put": {"TableName": TABLE, "Item": {**key("3"), "n": {"N": "9"}}}},
            {"Delete": {"TableName": TABLE, "Key": key("2"), "ConditionExpression": "n = :x",
                        "ExpressionAttributeValues": {":x": {"N": "0"}}}},  # fails: n is 5
        ])  # fmt: skip
    assert items() == before


def test_a_transaction_that_holds_applies_all_of_its_writes(table):
    boto3.client("dynamodb").transact_write_items(TransactItems=[
        {"Update": {"TableName": TABLE, "Key": key("1"), "UpdateExpression": "SET n = n + :o",
                    "ExpressionAttributeValues": {":o": {"N": "1"}}}},
        {"Put": {"TableName": TABLE, "Item": {**key("3"), "n": {"N": "9"}}}},
    ])  # fmt: skip
    after = items()
    assert after["1"]["n"] == {"N": "2"} and after["3"]["n"] == {"N": "9"} and "2" in after
