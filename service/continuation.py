"""Continuation tokens: where a next-word reading stopped, signed, carried by the client.

An editor asks for suggestions on every keystroke. Instead of the whole text each time, it sends
the text typed since its last request and the `state` token that request returned; the service
resumes the recurrent network from the states inside the token, so a keystroke costs the same
whatever the document's length. The token (not a server-side session) holds the state because a
keystroke may reach any replica behind a load balancer, and the server then keeps nothing per
client: memory stays bounded by the requests in flight.

Layout (base64url, no padding): version byte · header length (2 bytes) · JSON header (model,
version, bundle fingerprint, last word id, the word being typed, words read) · the states as
float16 · HMAC-SHA256 tag (16 bytes) over all before it. The key is the operator's
(`continuation_secrets`, shared by all replicas; several for rotation, the first signs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import struct
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidState, StaleState

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
TAG_BYTES = 16
_HEADER = struct.Struct("<BH")
FLOAT16_MAX = float(np.finfo(np.float16).max)
MAX_TOKEN_CHARS = 65_536  # far above any model's token; bounds the work spent on a forged one


@dataclass(frozen=True)
class Continuation:
    states: list[np.ndarray]  # each [layers, hidden]: the states before `last_id` was read
    last_id: int
    pending: str  # the word being typed, not read yet
    words: int  # tokens read since the text began


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    fingerprint: str  # of the bundle's step model: a token never resumes other weights


def fingerprint(step_model: bytes) -> str:
    return hashlib.sha256(step_model).hexdigest()[:16]


class ContinuationKeys:
    """Seals and opens continuation tokens with the operator's keys."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key")
        self._keys = keys

    @classmethod
    def from_setting(cls, value: str) -> ContinuationKeys:
        keys = [k.strip().encode() for k in value.split(",") if k.strip()]
        if not keys:
            log.warning(
                "RNNSERVE_CONTINUATION_SECRETS is not set: continuation tokens are signed with a key made at "
                "start-up, so they hold only on this process until it restarts (clients then resend the text)"
            )
            keys = [secrets.token_bytes(32)]
        return cls(keys)

    def _tag(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]

    def seal(self, model: ModelIdentity, continuation: Continuation) -> str:
        header = json.dumps(
            {
                "m": model.name,
                "v": model.version,
                "f": model.fingerprint,
                "l": continuation.last_id,
                "p": continuation.pending,
                "n": continuation.words,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        states = b"".join(
            np.clip(state, -FLOAT16_MAX, FLOAT16_MAX).astype("<f2").tobytes() for state in continuation.states
        )
        message = _HEADER.pack(FORMAT_VERSION, len(header)) + header + states
        return base64.urlsafe_b64encode(message + self._tag(self._keys[0], message)).rstrip(b"=").decode()

    def open(self, token: str, model: ModelIdentity, shapes: list[tuple[int, int]]) -> Continuation:
        """The continuation inside a token this service sealed for `model`; an error for
        anything else (`InvalidState`), `StaleState` for a genuine token of another model or version."""
        invalid = InvalidState("state: not a continuation token this service issued; resend the whole text")
        if len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise invalid
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise invalid from None
        if len(raw) < _HEADER.size + TAG_BYTES:
            raise invalid
        message, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if not any(hmac.compare_digest(tag, self._tag(key, message)) for key in self._keys):
            raise invalid
        # Signed by us from here on: the layout is ours, but still checked against this model.
        version, length = _HEADER.unpack_from(message)
        if version != FORMAT_VERSION:
            raise StaleState("state: issued by another release of the service; resend the whole text")
        header = json.loads(message[_HEADER.size : _HEADER.size + length])
        if (header["m"], header["v"], header["f"]) != (model.name, model.version, model.fingerprint):
            raise StaleState(
                f"state: issued by model {header['m']}/{header['v']}, this request is answered by "
                f"{model.name}/{model.version}; resend the whole text"
            )
        body = memoryview(message)[_HEADER.size + length :]
        sizes = [layers * hidden for layers, hidden in shapes]
        if len(body) != 2 * sum(sizes):
            raise invalid
        states, offset = [], 0
        for (layers, hidden), size in zip(shapes, sizes, strict=True):
            array = np.frombuffer(body[offset : offset + 2 * size], dtype="<f2").astype(np.float32)
            states.append(array.reshape(layers, hidden))
            offset += 2 * size
        return Continuation(states, int(header["l"]), str(header["p"]), int(header["n"]))
