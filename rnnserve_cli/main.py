"""`rnnserve serve | train | evaluate | retokenize | bench`.

`serve` runs the service (`python -m service`), with flags for the settings people change most;
every other setting is an `RNNSERVE_*` environment variable (`service/settings.py`). `train`,
`evaluate` and `retokenize` are `python -m training`'s commands, unchanged (they need the `train`
extra: torch). `bench` load-tests a running service (`rnnserve_cli/bench.py`).
"""

from __future__ import annotations

import argparse
import os
import sys

SERVE_FLAGS = {
    # flag: (setting's environment variable, help)
    "--host": ("RNNSERVE_HOST", "address to listen on (default 127.0.0.1)"),
    "--port": ("RNNSERVE_PORT", "HTTP port (default 8000)"),
    "--grpc-port": ("RNNSERVE_GRPC_PORT", "KServe v2 gRPC port (default 8001; 0: no gRPC)"),
    "--models": ("RNNSERVE_MODEL_REPOSITORY", "directory of <name>/<version>/ bundles (default models)"),
    "--api-keys": ("RNNSERVE_API_KEYS", "comma-separated API keys (default: none, no authentication)"),
    "--log-level": ("RNNSERVE_LOG_LEVEL", "debug, info, warning or error"),
}
TRAINING_COMMANDS = {
    "train": "train, export and verify a model bundle (rnnserve train --help)",
    "evaluate": "print held-out metrics of a bundle as JSON",
    "retokenize": "copy a bundle with a tokenizer for raw typed text",
}


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rnnserve serve", description="Serve the model repository over HTTP.")
    for flag, (variable, text) in SERVE_FLAGS.items():
        parser.add_argument(flag, dest=variable, help=f"{text}; or {variable}")
    args = parser.parse_args(argv)
    for variable, value in vars(args).items():
        if value is not None:
            os.environ[variable] = value
    from service.__main__ import main as serve

    serve()
    return 0


def _training(command: str, argv: list[str]) -> int:
    try:
        from training.cli import main as training
    except ModuleNotFoundError as error:  # torch is not part of the serving install
        print(f"rnnserve {command} needs the training extra ({error.name} is missing): pip install 'rnnserve[train]'")
        return 2
    return training([command, *argv], prog="rnnserve")


def _bench(argv: list[str]) -> int:
    from rnnserve_cli.bench import main as bench

    return bench(argv)


def _usage() -> str:
    lines = ["usage: rnnserve <command> [options]", "", "commands:"]
    lines.append("  serve       serve the model repository over HTTP (rnnserve serve --help)")
    lines += [f"  {name:<11} {text}" for name, text in TRAINING_COMMANDS.items()]
    lines.append("  bench       load-test a running service: requests/s, p50, p99 (rnnserve bench --help)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return _serve(rest)
    if command in TRAINING_COMMANDS:
        return _training(command, rest)
    if command == "bench":
        return _bench(rest)
    print(f"rnnserve: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2
