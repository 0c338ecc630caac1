"""The payload codec (AES-256-GCM with a key ring) and the codec server that serves it."""
from __future__ import annotations

import base64
import json
import multiprocessing
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from infra.codec import (
    ENCODING, KEY_ID, MAX_LAYERS, CodecError, EncryptionCodec, KeyRing, load_key_ring, new_key_line,
)
from infra.converter import data_converter
from infra.settings import Settings
from tests.test_ingress_support import Harness, harness  # noqa: F401 (fixture)

DEBTOR = {"name": "Wang Wei", "phone": "+8613800138000", "email": "wang.wei@example.com"}


def ring(*lines: str) -> KeyRing:
    return KeyRing.parse("\n".join(lines))


async def test_round_trip_hides_the_content_and_names_the_key() -> None:
    codec = EncryptionCodec(ring(new_key_line("a")))
    plain = pydantic_data_converter.payload_converter.to_payloads([DEBTOR])
    [sealed] = await codec.encode(plain)
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID].decode() == codec.ring.active
    for value in DEBTOR.values():
        assert value.encode() not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == plain
    # Same input, fresh nonce: no two ciphertexts alike.
    assert (await codec.encode(plain))[0].data != sealed.data


async def test_rotation_newest_encrypts_every_key_decrypts() -> None:
    old_line, new_line = new_key_line("old"), new_key_line("new")
    old = EncryptionCodec(ring(old_line))
    [before] = await old.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'{"x":1}')])
    rotated = EncryptionCodec(ring(new_line, old_line))
    [after] = await rotated.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'{"x":2}')])
    assert after.metadata[KEY_ID].decode().startswith("new-")
    assert [p.data for p in await rotated.decode([before, after])] == [b'{"x":1}', b'{"x":2}']
    # A history written under a key that was dropped from the ring fails clearly, not silently.
    with pytest.raises(CodecError, match="not configured"):
        await EncryptionCodec(ring(new_line)).decode([before])


async def test_plain_json_from_clients_that_do_not_encrypt_is_accepted() -> None:
    dc = data_converter(Settings.model_validate({"ARREARS_CODEC_KEYS": new_key_line()}))
    plain = await pydantic_data_converter.encode([DEBTOR])
    assert plain[0].metadata["encoding"] == b"json/plain"
    assert await dc.decode(plain, [dict]) == [DEBTOR]
    sealed = await dc.encode([DEBTOR])
    assert sealed[0].metadata["encoding"] == ENCODING and await dc.decode(sealed, [dict]) == [DEBTOR]


async def test_tampering_and_key_swaps_are_detected() -> None:
    a, b = new_key_line("a"), new_key_line("b")
    codec = EncryptionCodec(ring(a, b))
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"{}")])
    flipped = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(CodecError, match="failed authentication"):
        await codec.decode([flipped])
    # The key id is bound to the ciphertext: claiming the other configured key fails too.
    swapped = Payload(metadata={**dict(sealed.metadata), KEY_ID: b.split(":")[0].encode()}, data=sealed.data)
    with pytest.raises(CodecError):
        await codec.decode([swapped])


async def test_a_payload_sealed_twice_opens_layer_by_layer_within_a_bound() -> None:
    """The Temporal CLI encodes through a codec endpoint in a gRPC interceptor, in place, and re-sends
    an update's request until it is durable: a retried update arrives sealed twice."""
    codec = EncryptionCodec(ring(new_key_line("a"), new_key_line("b")))
    plain = pydantic_data_converter.payload_converter.to_payloads([DEBTOR])
    twice = await codec.encode(await codec.encode(plain))
    assert twice[0].metadata["encoding"] == ENCODING
    assert await codec.decode(twice) == plain
    too_deep = plain
    for _ in range(MAX_LAYERS + 1):
        too_deep = await codec.encode(too_deep)
    with pytest.raises(CodecError, match="sealed more than"):
        await codec.decode(too_deep)


def test_key_ring_configuration_errors_are_clear() -> None:
    with pytest.raises(CodecError, match="id:base64key"):
        KeyRing.parse("nokey")
    with pytest.raises(CodecError, match="32 bytes"):
        KeyRing.parse(f"k1:{base64.b64encode(b'short').decode()}")
    with pytest.raises(CodecError, match="unique"):
        line = new_key_line()
        KeyRing.parse(f"{line},{line}")
    with pytest.raises(CodecError, match="no payload encryption key"):
        KeyRing.parse("# only a comment\n")


def _load(data_dir: str, out) -> None:
    out.put(load_key_ring(None, None, Path(data_dir)).serialise())


def test_development_key_is_generated_once_even_by_racing_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(str(tmp_path), out)) for _ in range(4)]
    for p in procs:
        p.start()
    rings = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(30)
    assert len(rings) == 1
    path = tmp_path / "secrets" / "codec-keys"
    assert path.stat().st_mode & 0o777 == 0o600 and (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert load_key_ring(None, None, tmp_path).serialise() == rings.pop()


async def test_codec_server_decodes_for_authorised_callers_only(harness: Harness) -> None:
    app = harness.http._transport.app  # type: ignore[attr-defined]
    sealed = await harness.client.data_converter.encode([DEBTOR])
    body = json_format.MessageToJson(Payloads(payloads=sealed))
    ui = f"http://localhost:{Settings.model_validate({}).temporal_ui_port}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        headers = {"Content-Type": "application/json", "X-Namespace": "default"}
        assert (await http.post("/codec/decode", content=body, headers=headers)).status_code == 401
        wrong = {**headers, "Authorization": "Bearer arr_000000000000_" + "x" * 43}
        assert (await http.post("/codec/decode", content=body, headers=wrong)).status_code == 401

        for role in ("readonly", "billing", "operator", "supervisor"):
            auth = {**headers, "Authorization": f"Bearer {harness.keys[role]}"}
            r = await http.post("/codec/decode", content=body, headers=auth)
            assert r.status_code == 200, r.text
            [decoded] = json_format.Parse(r.content, Payloads()).payloads
            assert json.loads(decoded.data) == DEBTOR

        # The Web UI's form: the key in the path (its codec settings cannot send a header).
        r = await http.post(f"/codec/k/{harness.keys['readonly']}/decode", content=body, headers=headers)
        assert r.status_code == 200 and DEBTOR["email"] in base64.b64decode(r.json()["payloads"][0]["data"]).decode()
        assert (await http.post("/codec/k/arr_000000000000_" + "x" * 43 + "/decode", content=body,
                                headers=headers)).status_code == 401

        # Encode, for the UI's start/signal forms; another namespace is refused.
        plain = json_format.MessageToJson(Payloads(payloads=await pydantic_data_converter.encode([DEBTOR])))
        r = await http.post("/codec/encode", content=plain,
                            headers={**headers, "Authorization": f"Bearer {harness.keys['readonly']}"})
        [enc] = json_format.Parse(r.content, Payloads()).payloads
        assert enc.metadata["encoding"] == ENCODING
        assert await harness.client.data_converter.decode([enc], [dict]) == [DEBTOR]
        r = await http.post("/codec/decode", content=body, headers={**headers, "X-Namespace": "other",
                                                                    "Authorization": f"Bearer {harness.keys['readonly']}"})
        assert r.status_code == 403

        # CORS: the UI's origin only.
        preflight = {"Origin": ui, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type,x-namespace"}
        r = await http.options("/codec/decode", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ui
        r = await http.options("/codec/decode", headers={**preflight, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
        r = await http.post("/codec/decode", content=body, headers={**headers, "Origin": "https://evil.example",
                                                                    "Authorization": f"Bearer {harness.keys['readonly']}"})
        assert "access-control-allow-origin" not in r.headers
        assert r.status_code != 500
