"""KServe v2 over gRPC (`inference.GRPCInferenceService`, messages generated in `service/protos`),
served by `grpc.aio` on the app's own event loop, from the lifespan, beside uvicorn's HTTP.

A call is answered with what REST uses: the repository's leases, the v2 meaning of a request
(`service.inference_v2`: the same query rules and messages), the same batchers and deadlines
(`ServedModel`), the same API keys (`x-api-key` or `authorization: Bearer` metadata) and the same
metrics (per-model outcomes; per-method call counts and latency beside the HTTP ones). Typed
errors end the call with the status `service.errors.grpc_code` pairs with them. Outputs go back
as `raw_output_contents` (Triton's choice too): FP32 little-endian, BYTES length-prefixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from service import binary_tensors, inference_v2
from service.errors import InvalidInput, MalformedRequest, ModelNotFound, ServiceError, grpc_code, log_server_fault
from service.logs import request_id, request_id_from
from service.protos import grpc_predict_v2_pb2 as pb
from service.routes.health import is_ready
from service.security import check_key, presented_key
from service.serving import Serving

log = logging.getLogger("service.grpc")

R = TypeVar("R", bound=Message)
Guard = Literal["key", "health"]
# gRPC clients refuse trailers past 16 KiB (the whole call then fails with RESOURCE_EXHAUSTED), and a
# message may quote the request (an unknown model name, parameter keys): details are cut to fit.
MAX_DETAILS = 1024
GRACE_S = 30.0  # in-flight calls may finish within this at shutdown, as uvicorn's HTTP requests


class InferenceServicer:
    """The service's six methods. Requests arrive as bytes and are parsed inside `_call`, so that
    a message that does not decode is the caller's INVALID_ARGUMENT, counted like any other fault
    (grpcio's own deserializer would answer UNKNOWN and log a traceback)."""

    def __init__(self, serving: Serving, api_keys: list[bytes]) -> None:
        self._serving = serving
        self._keys = api_keys
        self._auth_health = serving.settings.auth_health
        self._calls = serving.metrics.grpc_requests
        self._latency = serving.metrics.grpc_latency
        self._access_log = serving.access_log
        self._paths: dict[str, str] = {}  # method: its path, as the access log names it

    def handler(self) -> grpc.GenericRpcHandler:
        methods: dict[str, tuple[type[Message], Guard, Callable[[Any], Awaitable[Message]]]] = {
            "ServerLive": (pb.ServerLiveRequest, "health", self._server_live),
            "ServerReady": (pb.ServerReadyRequest, "health", self._server_ready),
            "ModelReady": (pb.ModelReadyRequest, "key", self._model_ready),
            "ServerMetadata": (pb.ServerMetadataRequest, "key", self._server_metadata),
            "ModelMetadata": (pb.ModelMetadataRequest, "key", self._model_metadata),
            "ModelInfer": (pb.ModelInferRequest, "key", self._infer),
        }
        service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
        assert set(methods) == {m.name for m in service.methods}, "every method of the definition is served"
        self._paths = {name: f"/{service.full_name}/{name}" for name in methods}
        return grpc.method_handlers_generic_handler(
            service.full_name,
            {
                name: grpc.unary_unary_rpc_method_handler(
                    self._method(name, request_type, guard, answer), response_serializer=_serialize
                )
                for name, (request_type, guard, answer) in methods.items()
            },
        )

    # Health and metadata.

    async def _server_live(self, request: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def _server_ready(self, request: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=is_ready(self._serving.repository.snapshot))

    async def _model_ready(self, request: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        # Not an error over gRPC: clients (tritonclient's is_model_ready) ask for a yes or no.
        try:
            self._serving.repository.get(request.name, request.version or None)
        except ModelNotFound:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    async def _server_metadata(self, request: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        # The binary tensor extension is REST's; gRPC carries raw contents natively.
        return pb.ServerMetadataResponse(name=inference_v2.SERVER_NAME, version=inference_v2.SERVER_VERSION)

    async def _model_metadata(self, request: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        repository = self._serving.repository
        model = repository.get(request.name, request.version or None)
        metadata = inference_v2.model_metadata(model, repository.versions(model.name))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in metadata["inputs"]],
            outputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in metadata["outputs"]],
        )

    # Inference.

    async def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        serving = self._serving
        with serving.repository.lease(request.model_name, request.model_version or None) as (model,):
            texts = _texts(request)
            query = inference_v2.query(model, texts, _parameters(request.parameters), serving.rules)
            wanted = [output.name for output in request.outputs]
            inference_v2.check_outputs(model, wanted)
            tensors = inference_v2.selected(await model.infer(query, serving.rules), wanted)
        response = pb.ModelInferResponse(model_name=model.name, model_version=model.version, id=request.id)
        for tensor in tensors:
            response.outputs.add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
            response.raw_output_contents.append(binary_tensors.encode(tensor["datatype"], tensor["data"]))
        return response

    # What every call goes through.

    def _method(
        self,
        method: str,
        request_type: type[Message],
        guard: Guard,
        answer: Callable[[Any], Awaitable[Message]],
    ) -> Callable[[bytes, grpc.aio.ServicerContext], Awaitable[Message]]:
        async def handle(raw: bytes, context: grpc.aio.ServicerContext) -> Message:
            return await self._call(method, context, guard, lambda: answer(_parse(request_type, raw)))

        return handle

    async def _call(
        self, method: str, context: grpc.aio.ServicerContext, guard: Guard, answer: Callable[[], Awaitable[R]]
    ) -> R:
        metadata = {item.key: item.value for item in context.invocation_metadata() or () if isinstance(item.value, str)}
        rid = request_id_from(metadata.get("x-request-id", ""))
        token = request_id.set(rid)
        trailer = (("x-request-id", rid),)
        started = time.perf_counter()
        code, message = grpc.StatusCode.OK, ""
        try:
            if guard == "key" or self._auth_health:
                check_key(self._keys, presented_key(metadata.get))
            response = await answer()
        except ServiceError as error:
            code, message = grpc_code(error), error.message
            log_server_fault(error)
        except asyncio.CancelledError:  # the client went away or its deadline passed
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            log.exception("unhandled error")
            code, message = grpc.StatusCode.INTERNAL, "internal server error"
        finally:
            elapsed = time.perf_counter() - started
            self._calls.labels(method, code.name).inc()
            self._latency.labels(method).observe(elapsed)
            self._access_log.record("gRPC", self._paths[method], method, code.name, elapsed, rid)
            request_id.reset(token)
        if code is not grpc.StatusCode.OK:
            if len(message) > MAX_DETAILS:
                message = message[:MAX_DETAILS] + f"... ({len(message) - MAX_DETAILS} more characters)"
            await context.abort(code, message, trailing_metadata=trailer)
        context.set_trailing_metadata(trailer)
        return response


def _parse(request_type: type[R], raw: bytes) -> R:
    try:
        return request_type.FromString(raw)
    except DecodeError:
        raise MalformedRequest(f"the message is not a valid {request_type.DESCRIPTOR.full_name}") from None


def _serialize(response: Message) -> bytes:
    return response.SerializeToString()


def _texts(request: pb.ModelInferRequest) -> list[str]:
    if len(request.inputs) != 1:
        raise InvalidInput(f"inputs: one tensor named {inference_v2.INPUT_NAME!r}, got {len(request.inputs)}")
    tensor = request.inputs[0]
    shape = list(tensor.shape)
    where = inference_v2.check_input(tensor.name, tensor.datatype, shape)
    raw = request.raw_input_contents
    if raw:
        if len(raw) != 1:
            raise MalformedRequest(f"raw_input_contents: one entry per input (1), got {len(raw)}")
        if tensor.HasField("contents"):
            raise InvalidInput(f"{where}: give contents or raw_input_contents, not both")
        return inference_v2.texts_from_raw(memoryview(raw[0]), shape, where)
    contents = tensor.contents
    wrong = [field.name for field, _ in contents.ListFields() if field.name != "bytes_contents"]
    if wrong:
        raise InvalidInput(f"{where}: a BYTES tensor's elements go in bytes_contents, not {', '.join(wrong)}")
    return inference_v2.texts_from_elements(list(contents.bytes_contents), shape, where)


def _parameters(parameters: Any) -> dict[str, Any]:
    """A protobuf parameter map as plain values (a parameter with no value set reads as absent)."""
    values = {}
    for key, parameter in parameters.items():
        which = parameter.WhichOneof("parameter_choice")
        if which is not None:
            values[key] = getattr(parameter, which)
    return values


async def start(serving: Serving, api_keys: list[bytes]) -> grpc.aio.Server:
    """A started server on `RNNSERVE_HOST:RNNSERVE_GRPC_PORT`; with several workers each binds the
    port (SO_REUSEPORT) and the kernel spreads connections over them."""
    settings = serving.settings
    server = grpc.aio.server(
        options=[
            # The REST body limit, for the same reason: a request is bounded before it is parsed.
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            # Worker processes each bind the port; a single process wants a port nobody else holds.
            ("grpc.so_reuseport", int(settings.workers > 1)),
        ]
    )
    server.add_generic_rpc_handlers((InferenceServicer(serving, api_keys).handler(),))
    address = f"{settings.host}:{settings.grpc_port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError as error:
        raise RuntimeError(f"gRPC cannot listen on {address} ({error}); set RNNSERVE_GRPC_PORT, 0 for none") from None
    await server.start()
    log.info("gRPC (KServe v2) on %s", address)
    return server


async def stop(server: grpc.aio.Server) -> None:
    await server.stop(GRACE_S)
