"""Table lookups answer JSON whichever encoder Faust picked (orjson gives bytes)."""

import json

import pytest

from streams.web import table_routes


@pytest.mark.parametrize("dumps", [lambda data: json.dumps(data),
                                   lambda data: json.dumps(data).encode()])
def test_the_answer_is_json_text_or_bytes_alike(monkeypatch, dumps) -> None:
    monkeypatch.setattr(table_routes.faust_json, "dumps", dumps)
    response = table_routes._json({"table": "t", "key": "k", "value": 3}, status=200)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert json.loads(response.body) == {"table": "t", "key": "k", "value": 3}
