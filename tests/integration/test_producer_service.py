"""The producer HTTP service against a real broker: produce API, bad input, topics, metrics."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.kafka.publisher import PublisherConfig
from streams.settings import Secret, Settings
from streams.web.producer_service import access_policy, create_producer_web_app, serve
from tests.integration.test_publisher import create_topic, publisher_for, read_all

pytestmark = pytest.mark.integration

VND = "application/vnd.kafka.json.v2+json"


@pytest.fixture
async def client(kafka_bootstrap: str) -> AsyncIterator[TestClient]:
    async with publisher_for(kafka_bootstrap) as publisher:
        app = create_producer_web_app(publisher, max_body_bytes=256 * 1024)
        async with TestClient(TestServer(app)) as test_client:
            yield test_client


@pytest.fixture
async def topic(kafka_bootstrap: str, unique_name: str) -> str:
    await create_topic(kafka_bootstrap, unique_name, partitions=3)
    return unique_name


async def test_a_1000_record_batch_round_trips(
    client: TestClient, topic: str, kafka_bootstrap: str
) -> None:
    records = [{"key": f"k{n % 100}", "value": {"n": n}, "headers": {"source": "test"}}
               for n in range(1000)]
    response = await client.post(f"/topics/{topic}", json={"records": records},
                                 headers={"Content-Type": VND})
    assert response.status == 200, await response.text()
    offsets = (await response.json())["offsets"]
    assert len(offsets) == 1000 and all(o["error_code"] is None for o in offsets)

    stored = {(p, o): (k, v) for p, o, k, v in await read_all(kafka_bootstrap, topic)}
    assert len(stored) == 1000
    for n, offset in enumerate(offsets):
        key, value = stored[(offset["partition"], offset["offset"])]
        assert key == f"k{n % 100}".encode() and json.loads(value) == {"n": n}


async def test_plain_json_content_type_and_explicit_partition(
    client: TestClient, topic: str
) -> None:
    response = await client.post(f"/topics/{topic}", json={
        "records": [{"value": "text"}, {"key": "user-42", "value": 1}, {"value": 2, "partition": 2}]
    })
    assert response.status == 200
    offsets = (await response.json())["offsets"]
    assert offsets[1]["partition"] == 1  # murmur2("user-42") % 3, as the Java client
    assert offsets[2]["partition"] == 2


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"items": []}', "application/json", 422, 'no "records"'),
        (b'{"records": {}}', "application/json", 422, "non-empty array"),
        (b'{"records": []}', "application/json", 422, "non-empty array"),
        (b'[1, 2]', "application/json", 422, "JSON object"),
        (b'{"records": [5]}', "application/json", 422, "records[0] must be an object"),
        (b'{"records": [{"value": 1, "headers": {"a": 1}}]}', "application/json", 422,
         "records[0].headers"),
        (b'{"records": [{"value": 1, "partition": "x"}]}', "application/json", 422,
         "records[0].partition"),
        (b'{"records": [{"value": 1, "partition": 9}]}', "application/json", 422,
         "has 3 partitions"),
        (b'{"records": [{"value": 1, "color": 2}]}', "application/json", 422, "unknown fields"),
        (b'{"records": [{}]}', "application/json", 422, "needs a key or a value"),
        (b'{"records": [{"value": 1}]}', "text/plain", 415, "not supported"),
        (b'{"records": [{"value": ' + b"[" * 100_000, "application/json", 400, "deeper than"),
        (b'{"records": [{"value": NaN}]}', "application/json", 400, "NaN and Infinity"),
        (b'{"records": [{"value": 1}, {"value": -Infinity}]}', "application/json", 400,
         "not a JSON number"),
        (b'{"records": [{"value": 1, "partition": 99999999999999999999}]}',
         "application/json", 422, "has 3 partitions"),
        (json.dumps({"records": [{"value": n} for n in range(10_001)]}).encode(),
         "application/json", 422, "PRODUCER_MAX_RECORDS"),
    ],
)
async def test_bad_input_gets_a_4xx_that_says_what_is_wrong(
    client: TestClient, topic: str, kafka_bootstrap: str,
    body: bytes, content_type: str, status: int, says: str,
) -> None:
    response = await client.post(f"/topics/{topic}", data=body,
                                 headers={"Content-Type": content_type})
    assert response.status == status
    error = await response.json()
    assert says in error["message"] and error["error_code"] // 100 == status
    assert await read_all(kafka_bootstrap, topic) == []  # nothing half-published


async def test_body_over_the_limit_is_413(client: TestClient, topic: str) -> None:
    records = [{"value": "x" * 1000} for _ in range(300)]
    response = await client.post(f"/topics/{topic}", json={"records": records})
    assert response.status == 413
    assert "PRODUCER_MAX_BODY_BYTES" in (await response.json())["message"]


async def test_invalid_topic_name_is_400(client: TestClient) -> None:
    response = await client.post("/topics/bad$name", json={"records": [{"value": 1}]})
    assert response.status == 400
    assert "characters Kafka does not allow" in (await response.json())["message"]


async def test_unknown_topic_is_404(client: TestClient, unique_name: str) -> None:
    response = await client.post(f"/topics/{unique_name}", json={"records": [{"value": 1}]})
    assert response.status == 404
    assert "does not exist" in (await response.json())["message"]


async def test_unknown_topic_is_created_when_auto_create_is_on(
    kafka_bootstrap: str, unique_name: str
) -> None:
    async with (
        publisher_for(kafka_bootstrap, auto_create_topics=True) as publisher,
        TestClient(TestServer(create_producer_web_app(publisher))) as client,
    ):
        response = await client.post(f"/topics/{unique_name}", json={"records": [{"value": 1}]})
        assert response.status == 200
        assert (await response.json())["offsets"][0]["offset"] == 0


async def test_a_record_kafka_refuses_carries_its_error(
    kafka_bootstrap: str, topic: str
) -> None:
    async with (
        publisher_for(kafka_bootstrap, max_request_bytes=5000) as publisher,
        TestClient(TestServer(create_producer_web_app(publisher))) as client,
    ):
        response = await client.post(f"/topics/{topic}", json={
            "records": [{"value": "small"}, {"value": "x" * 10_000}, {"value": "ok"}]})
        assert response.status == 200
        first, big, last = (await response.json())["offsets"]
    assert first["error_code"] is None and last["error_code"] is None
    assert big["partition"] is None and big["error_code"] == 1
    assert "MessageSizeTooLarge" in big["error"]


async def test_topics_lists_partition_counts(client: TestClient, topic: str) -> None:
    response = await client.get("/topics")
    assert response.status == 200
    topics = {t["name"]: t["partitions"] for t in (await response.json())["topics"]}
    assert topics[topic] == 3


async def test_metrics_and_health(client: TestClient, topic: str) -> None:
    await client.post(f"/topics/{topic}", json={"records": [{"value": 1}]})
    metrics = await client.get("/metrics")
    text = await metrics.text()
    assert metrics.status == 200 and metrics.content_type == "text/plain"
    assert f'streams_producer_messages_total{{topic="{topic}"}}' in text
    assert "streams_producer_records_per_request_bucket" in text
    health = await client.get("/health")
    assert health.status == 200 and (await health.json()) == {"status": "ok"}
    missing = await client.get("/nope")
    assert missing.status == 404 and "error_code" in await missing.json()


async def test_the_service_serves_and_stops_cleanly(kafka_bootstrap: str, topic: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(bootstrap_servers=kafka_bootstrap, producer_port=port)
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, PublisherConfig(), stop))
    async with aiohttp.ClientSession() as session:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            assert not service.done(), f"service exited with {service.result()}"
            try:
                async with session.post(f"http://127.0.0.1:{port}/topics/{topic}",
                                        json={"records": [{"value": 1}]}) as response:
                    assert response.status == 200
                    break
            except aiohttp.ClientConnectionError:
                assert loop.time() < deadline, "the service never answered"
                await asyncio.sleep(0.1)
    stop.set()
    assert await asyncio.wait_for(service, 30) == 0



async def test_with_a_token_only_authorised_same_origin_json_is_published(
    kafka_bootstrap: str, topic: str
) -> None:
    token = "producer-token-" + "3" * 20
    settings = Settings(bootstrap_servers=kafka_bootstrap, api_token=Secret(token))
    async with publisher_for(kafka_bootstrap) as publisher:
        app = create_producer_web_app(publisher, access=access_policy(settings))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            body = {"records": [{"value": {"n": 1}}]}
            refused = await client.post(f"/topics/{topic}", json=body)
            assert refused.status == 401
            assert (await refused.json())["error_code"] == 40101
            wrong = await client.post(f"/topics/{topic}", json=body,
                                      headers={"Authorization": "Bearer nope"})
            assert wrong.status == 401
            auth = {"Authorization": f"Bearer {token}"}
            cross_site = await client.post(f"/topics/{topic}", data=json.dumps(body), headers={
                **auth, "Content-Type": "text/plain", "Origin": "http://evil.example"})
            assert cross_site.status == 403
            plain = await client.post(f"/topics/{topic}", data=json.dumps(body),
                                      headers={**auth, "Content-Type": "text/plain"})
            assert plain.status == 415
            rebound = await client.get("/topics", headers={"Host": "evil.example"})
            assert rebound.status == 403
            assert await read_all(kafka_bootstrap, topic) == []
            assert (await client.get("/health")).status == 200
            assert (await client.get("/topics")).status == 200  # reads stay open
            ok = await client.post(f"/topics/{topic}", json=body, headers={
                **auth, "Origin": f"http://127.0.0.1:{client.port}"})
            assert ok.status == 200, await ok.text()
    assert len(await read_all(kafka_bootstrap, topic)) == 1


async def test_unknown_topics_share_one_metric_label(client: TestClient) -> None:
    for n in range(5):
        response = await client.post(f"/topics/no-such-topic-{n}",
                                     json={"records": [{"value": 1}]})
        assert response.status == 404
    text = await (await client.get("/metrics")).text()
    assert "no-such-topic" not in text
    assert 'streams_producer_errors_total{error="UnknownTopicError",topic="(unknown)"}' in text
