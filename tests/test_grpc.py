"""KServe v2 over gRPC, beyond what tests/test_kserve.py runs through both Triton clients: the
definition (generated code current, wire-compatible with Triton's), malformed and hostile messages
(a clear status, never INTERNAL or UNKNOWN), API keys, deadlines, metrics and request ids.

Requests are built with tritonclient's own generated messages, which share the wire format (the
service's modules are not imported here: both register `inference.*` in protobuf's default pool).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from google.protobuf import descriptor_pb2
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from tests.conftest import ROOT, Server
from tests.test_kserve import strings  # BYTES elements as the v2 raw layout frames them

PROTO = Path("service/protos/grpc_predict_v2.proto")
GENERATED = ["grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi"]


def test_generated_modules_are_current(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("*_pb2*", "__pycache__"))
    outputs = ["--python_out=.", "--pyi_out=."]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", *outputs, str(PROTO)],
        cwd=tmp_path,
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "service/protos" / name).read_text()
        assert fresh == (ROOT / "service/protos" / name).read_text(), f"{name} is stale: run `make protos`"


def _messages(file: descriptor_pb2.FileDescriptorProto) -> dict[str, dict[str, tuple]]:
    found: dict[str, dict[str, tuple]] = {}

    def walk(message: descriptor_pb2.DescriptorProto, prefix: str) -> None:
        found[prefix + message.name] = {f.name: (f.number, f.type, f.label) for f in message.field}
        for nested in message.nested_type:
            walk(nested, f"{prefix}{message.name}.")

    for message in file.message_type:
        walk(message, "")
    return found


def test_definition_matches_tritons_on_the_wire(tmp_path: Path) -> None:
    """Every message, field number and type, and every method, as Triton's client defines them."""
    descriptor_set = tmp_path / "v2.pb"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", ".", f"--descriptor_set_out={descriptor_set}", str(PROTO)],
        cwd=ROOT,
        check=True,
    )
    ours = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes()).file[0]
    theirs = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert ours.package == theirs.package == "inference"
    their_messages = _messages(theirs)
    for name, fields in _messages(ours).items():
        for field, spec in fields.items():
            assert their_messages[name][field] == spec, f"{name}.{field}"
    (service,) = ours.service
    (their_service,) = [s for s in theirs.service if s.name == service.name == "GRPCInferenceService"]
    their_methods = {m.name: (m.input_type, m.output_type) for m in their_service.method}
    for method in service.method:
        assert their_methods[method.name] == (method.input_type, method.output_type)


@pytest.fixture()
def stub(server: Server) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def text_tensor(shape: list[int], **fields: object) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=shape, **fields)


def contents(*items: bytes) -> pb.InferTensorContents:
    return pb.InferTensorContents(bytes_contents=list(items))


def raw(shape: list[int], *chunks: bytes) -> dict:
    return {"inputs": [text_tensor(shape)], "raw_input_contents": list(chunks)}


def listed(shape: list[int], *items: bytes, **fields: object) -> dict:
    return {"inputs": [text_tensor(shape, contents=contents(*items))], **fields}


def top_k(**value: object) -> dict:
    return listed([1], b"hi", parameters={"top_k": pb.InferParameter(**value)})


INVALID, NOT_FOUND = "INVALID_ARGUMENT", "NOT_FOUND"
MANY_UNKNOWN_PARAMETERS = {f"key{i:05d}" * 40: pb.InferParameter(int64_param=1) for i in range(999)}  # 200 KB
NAMED = pb.ModelInferRequest.InferInputTensor


@pytest.mark.parametrize(
    ("request_fields", "code", "message"),
    [
        ({"inputs": []}, INVALID, "inputs: one tensor named 'text', got 0"),
        ({"inputs": [text_tensor([1]), text_tensor([1])]}, INVALID, "got 2"),
        (raw([1], strings(b"hi"), strings(b"hi")), INVALID, "one entry per input"),
        (raw([1], b"\x01\x00"), INVALID, "cut short"),
        (raw([1], struct.pack("<I", 2**32 - 1)), INVALID, "declares 4294967295 bytes"),
        (raw([1], strings(b"\xff\xfe")), INVALID, "not UTF-8"),
        (raw([1], strings(b"a", b"b")), INVALID, "more than the 1"),
        (raw([3], strings(b"a", b"b")), INVALID, "do not fill"),
        (listed([1], b"hi", raw_input_contents=[strings(b"hi")]), INVALID, "not both"),
        ({"inputs": [text_tensor([1], contents=pb.InferTensorContents(int64_contents=[1]))]}, INVALID, "not int64"),
        (listed([1], b"\xc3"), INVALID, "not UTF-8"),
        (listed([1], b"a\x00"), INVALID, "no NUL"),
        (listed([2, 2], b"a", b"b", b"c", b"d"), INVALID, "[n] or [n, 1]"),
        (listed([-1], b"a"), INVALID, "[n] or [n, 1]"),
        (listed([2**40], b"a"), INVALID, "do not fill"),
        ({"inputs": [NAMED(name="ids", datatype="BYTES", shape=[1])]}, INVALID, "named 'text'"),
        ({"inputs": [NAMED(name="text", datatype="FP32", shape=[1])]}, INVALID, "must be BYTES"),
        (listed([0]), INVALID, "at least one text"),
        (listed([1], b"hi", model_name=""), NOT_FOUND, "no model named ''"),
        (listed([1], b"hi", model_version="../1"), NOT_FOUND, "no version '../1'"),
        (listed([1], b"hi", model_name="x" * 100_000), NOT_FOUND, "more characters)"),  # details cut to fit
        (listed([1], b"hi", parameters=MANY_UNKNOWN_PARAMETERS), INVALID, "parameters: unknown key00000"),
        (top_k(string_param="many"), INVALID, "top_k"),
        (top_k(int64_param=-3), INVALID, "top_k"),
    ],
)
def test_malformed_messages(
    stub: pb_grpc.GRPCInferenceServiceStub, request_fields: dict, code: str, message: str
) -> None:
    request = pb.ModelInferRequest(**{"model_name": "intent", **request_fields})
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request, timeout=10)
    assert raised.value.code().name == code, raised.value.details()
    assert message in raised.value.details()
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("ModelInfer", b"\xff\xff\xff"),  # not a field tag
        ("ModelInfer", b"\x0a\x05ab"),  # model_name cut short
        ("ModelInfer", b"\x0a\x02\xc3\x28"),  # model_name not UTF-8
        ("ModelMetadata", b"\x0a\x02\xc3\x28"),
        ("ServerLive", b"\x0a\x05ab"),
    ],
)
def test_undecodable_messages(server: Server, method: str, body: bytes) -> None:
    """Bytes that are no message of the method's type are the caller's fault, with a message."""
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
        with pytest.raises(grpc.RpcError) as raised:
            call(body, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a valid inference." in raised.value.details()


def test_texts_as_contents_rows_and_unset_parameters(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    """`bytes_contents` instead of raw bytes, shape [n, 1], a parameter with no value (absent)."""
    request = pb.ModelInferRequest(
        model_name="next-word",
        inputs=[text_tensor([2, 1], contents=contents(b"the company", "caf\u00e9".encode()))],
        parameters={"top_k": pb.InferParameter(), "priority": pb.InferParameter(uint64_param=1)},
        id="x-1",
    )
    response = stub.ModelInfer(request, timeout=10)
    assert response.id == "x-1" and response.model_version == "1"
    assert [(o.name, list(o.shape)) for o in response.outputs] == [("next_tokens", [2, 5]), ("next_scores", [2, 5])]
    scores = np.frombuffer(response.raw_output_contents[1], dtype="<f4")
    assert scores.shape == (10,) and np.all(np.diff(scores[:5]) <= 0)


def test_oversized_message_is_refused(make_server, model_repository: Path) -> None:
    server = make_server(model_repository, RNNSERVE_MAX_BODY_BYTES="4096")
    client = triton_grpc.InferenceServerClient(server.grpc_target)
    tensor = triton_grpc.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(["word " * 2000], dtype=object))
    with pytest.raises(InferenceServerException) as raised:
        client.infer("sentiment", [tensor])
    assert raised.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert client.is_server_ready()


def test_api_keys_deadlines_metrics_and_request_ids(make_server, model_repository: Path) -> None:
    server = make_server(model_repository, RNNSERVE_API_KEYS="k1,k2")
    client = triton_grpc.InferenceServerClient(server.grpc_target)
    tensor = triton_grpc.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(["the movie was great"], dtype=object))
    assert client.is_server_live() and client.is_server_ready()  # probes open, as on REST
    for headers, status in (({}, "an API key is required"), ({"x-api-key": "nope"}, "invalid API key")):
        with pytest.raises(InferenceServerException, match=status) as raised:
            client.infer("sentiment", [tensor], headers=headers)
        assert raised.value.status() == "StatusCode.UNAUTHENTICATED"
    with pytest.raises(InferenceServerException, match="API key"):
        client.get_model_metadata("sentiment")
    assert client.infer("sentiment", [tensor], headers={"x-api-key": "k2"}).as_numpy("label").shape == (1,)
    assert client.infer("sentiment", [tensor], headers={"authorization": "Bearer k1"}).as_numpy("score").shape == (1,)

    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        request = pb.ModelInferRequest(model_name="sentiment", inputs=[text_tensor([1], contents=contents(b"good"))])
        _, call = stub.ModelInfer.with_call(request, metadata=[("x-api-key", "k1"), ("x-request-id", "req-7")])
        assert ("x-request-id", "req-7") in call.trailing_metadata()

    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'rnnserve_grpc_requests_total{code="UNAUTHENTICATED",method="ModelInfer"} 2.0' in metrics
    assert 'rnnserve_grpc_requests_total{code="OK",method="ModelInfer"} 3.0' in metrics
    # The model's own counters hold gRPC requests as they hold REST ones.
    assert 'rnnserve_inference_requests_total{model="sentiment",status="ok",version="1"} 3.0' in metrics

    # The service's inference deadline holds on gRPC as on REST.
    slow = make_server(model_repository, RNNSERVE_REQUEST_TIMEOUT_S="0.0001")
    late = triton_grpc.InferenceServerClient(slow.grpc_target)
    with pytest.raises(InferenceServerException, match="no answer within") as raised:
        late.infer("sentiment", [tensor])
    assert raised.value.status() == "StatusCode.DEADLINE_EXCEEDED"
    assert late.is_server_ready()


def test_no_grpc_when_port_is_zero(make_server, model_repository: Path) -> None:
    server = make_server(model_repository, RNNSERVE_GRPC_PORT="0")
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    assert "gRPC" not in server.log.read_text()


def test_a_client_deadline_withdraws_the_call(make_server, model_repository: Path) -> None:
    # A batch waits up to 1.5 s to fill: the call is queued when its 0.3 s deadline passes.
    server = make_server(model_repository, RNNSERVE_MAX_BATCH_DELAY_MS="1500")
    client = triton_grpc.InferenceServerClient(server.grpc_target)
    tensor = triton_grpc.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array(["the movie was great"], dtype=object))
    with pytest.raises(InferenceServerException) as raised:
        client.infer("sentiment", [tensor], client_timeout=0.3)
    assert raised.value.status() == "StatusCode.DEADLINE_EXCEEDED"
    time.sleep(2.0)  # past the batch delay: its batch has formed, without the withdrawn text
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'rnnserve_grpc_requests_total{code="CANCELLED",method="ModelInfer"} 1.0' in metrics
    assert 'rnnserve_batch_size_count{model="sentiment",version="1"} 0.0' in metrics  # nothing ran
    assert client.infer("sentiment", [tensor]).as_numpy("label").shape == (1,)
