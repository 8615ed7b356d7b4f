"""The services' AsyncAPI document, generated from the code with FastStream.

    python -m services.common.asyncapi [--out docs/asyncapi.json | docs/asyncapi.yaml]

Each service declares, in services/<name>/main.py, `PUBLISHES` (contract classes) and
`spec.subscriptions` (the durable consumers its runtime starts). A NatsBroker that is never
connected gets one publisher per published event and one subscriber per consumed event,
with the pydantic contract as payload schema; FastStream turns that into AsyncAPI 3.0.
"""

import argparse
import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from faststream.nats import JStream, NatsBroker, PullSub
from faststream.specification import AsyncAPI, Specification

from contracts import STREAMS, ContractEvent, registry
from services.common.runtime import Subscription
from services.common.settings import Settings, package_version

SERVICES = ("households", "relief", "ledger")
HEADERS = ("Headers: Event-Type (contract class name), Schema-Version, "
           "Nats-Msg-Id (<service>:<outbox position>, for JetStream's duplicate window).")


@dataclass(frozen=True)
class Declaration:
    publishes: list[type[ContractEvent]] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)


# Used while a service's main.py does not declare its own: households publishes what
# contracts.households defines.
FALLBACK = {
    "households": Declaration(
        publishes=[cls for cls in registry.values() if cls.__module__ == "contracts.households"]),
}


def declaration(service: str) -> Declaration:
    try:
        module = importlib.import_module(f"services.{service}.main")
    except ModuleNotFoundError as error:
        if error.name not in (f"services.{service}", f"services.{service}.main"):
            raise
        module = None
    fallback = FALLBACK.get(service, Declaration())
    publishes = getattr(module, "PUBLISHES", None)
    spec = getattr(module, "spec", None)
    return Declaration(
        publishes=fallback.publishes if publishes is None else list(publishes),
        subscriptions=fallback.subscriptions if spec is None else list(spec.subscriptions),
    )


def stream_of(subject: str) -> str:
    for name, patterns in STREAMS.items():
        if any(subject.startswith(p.removesuffix(">")) for p in patterns):
            return name
    raise LookupError(f"no stream takes {subject}")


def _payload_of(cls: type[ContractEvent]):
    async def handle(event) -> None:
        """Names the payload for the document; services.common.consumer does the handling."""

    handle.__annotations__["event"] = cls
    handle.__name__ = cls.type_name()
    return handle


def build_broker(server: str = Settings.nats_url) -> NatsBroker:
    broker = NatsBroker(server, description="NATS JetStream; one stream per publishing service")
    for service in SERVICES:
        declared = declaration(service)
        for cls in declared.publishes:
            broker.publisher(
                cls.subject, stream=JStream(stream_of(cls.subject), declare=False), schema=cls,
                title=f"{service}:publishes:{cls.type_name()}",
                description=f"{service} publishes {cls.type_name()} to stream "
                            f"{stream_of(cls.subject)}. {HEADERS}",
            )
        for sub in declared.subscriptions:
            for cls in sub.handlers:
                broker.subscriber(
                    cls.subject, stream=JStream(sub.stream, declare=False), durable=sub.durable,
                    pull_sub=PullSub(), title=f"{service}:{sub.durable}:{cls.type_name()}",
                    description=f"{service} consumes {cls.type_name()} from stream {sub.stream} "
                                f"with durable consumer {sub.durable}, exactly once in effect.",
                )(_payload_of(cls))
    return broker


def document(server: str = Settings.nats_url) -> Specification:
    return AsyncAPI(
        build_broker(server), title="Relief distribution: integration events",
        version=package_version(), schema_version="3.0.0",
        description="Events between households, relief and ledger. Generated from the code "
                    "(python -m services.common.asyncapi); schemas also in contracts/schemas.",
    ).to_specification()


def render(spec: Specification, yaml: bool = False) -> str:
    doc = spec.to_jsonable()
    for message in doc.get("components", {}).get("messages", {}).values():
        message.pop("correlationId", None)  # FastStream's own header; our publishers send none
    if yaml:
        import yaml as pyyaml  # optional: PyYAML is not a pinned dependency

        return pyyaml.safe_dump(doc, sort_keys=True, allow_unicode=True)
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the services' AsyncAPI document")
    parser.add_argument("--out", type=Path, help="file to write (.json, or .yaml with PyYAML); default stdout")
    parser.add_argument("--server", default=Settings.nats_url, help="NATS URL shown in the document")
    args = parser.parse_args(argv)
    yaml = args.out is not None and args.out.suffix in (".yaml", ".yml")
    try:
        text = render(document(args.server), yaml=yaml)
    except ModuleNotFoundError as error:
        if error.name != "yaml":
            raise
        print("YAML output needs PyYAML (pip install pyyaml); or write .json", file=sys.stderr)
        return 1
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
