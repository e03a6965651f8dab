"""Item sizes are counted as DynamoDB counts them against its 400 KB limit."""

from __future__ import annotations

from chalicelib.store.item_size import item_bytes


def test_names_and_values_count_as_dynamodb_counts_them():
    assert item_bytes({"id": {"S": "abc"}}) == 2 + 3
    assert item_bytes({"n": {"N": "12345"}}) == 1 + 4  # 5 digits: 3 bytes, plus 1
    assert item_bytes({"n": {"N": "1.500"}}) == 1 + 2  # trailing zeros do not count
    assert item_bytes({"b": {"BOOL": True}, "z": {"NULL": True}}) == 4
    # A list or map: 3 bytes, 1 per element, and what the elements hold (with map keys).
    assert item_bytes({"l": {"L": [{"S": "ab"}, {"N": "7"}]}}) == 1 + 3 + (1 + 2) + (1 + 2)
    assert item_bytes({"m": {"M": {"key": {"S": "v"}}}}) == 1 + 3 + (1 + 3 + 1)
