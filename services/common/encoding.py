"""Stored events for a hot path, encoded with orjson instead of the stdlib JSON encoder.

eventsourcing's JSONTranscoder writes compact UTF-8 JSON and wraps the types it transcodes
(datetime, date, UUID...) as {"_type_": name, "_data_": ...}. For events whose state is
JSON-native apart from dates and times, orjson writes the same bytes about five times faster:
it hands dates and times back to us (OPT_PASSTHROUGH_DATETIME) and we wrap them the same way.
orjson would write a UUID, an Enum or NaN its own way instead of failing, so the fast path is
only for the event types named by its user; anything else, or any value orjson refuses, goes
through the application's own mapper. The mapper's compressor and cipher apply either way.

Reading back (the relay, the writer loading entitlements) is the mirror image: orjson parses the
state and the wrapped values at the top level of the state are unwrapped by the transcoder's own
transcodings. A wrapped value anywhere deeper (counted in the raw bytes: `"_type_":` cannot
occur inside a JSON string, where the quote is escaped), anything orjson refuses (NaN), and any
run of 19 digits (orjson would read an integer beyond 64 bits as a float) go through the mapper.
"""

from datetime import datetime
from typing import Any, Iterable

import orjson
from eventsourcing.persistence import Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import get_topic, resolve_topic

OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
WRAPPED = b'"_type_":'
# orjson reads an integer beyond 64 bits as a float: any run of 19 digits goes to the mapper
DIGITS_ONLY = bytes(0x30 if chr(i).isdigit() and i < 0x80 else 0x20 for i in range(256))
NINETEEN_DIGITS = b"0" * 19


class FastEncoding:
    def __init__(self, mapper: Mapper, event_types: Iterable[type], also_read: Iterable[type] = ()):
        """`event_types`: events whose values are str, int, bool, None, datetimes and dates, and
        lists and str-keyed dicts of those. `also_read`: more events read back the fast way."""
        self.mapper = mapper
        self.topics = {t: get_topic(t) for t in event_types}
        self.read_topics = {*self.topics.values(), *map(get_topic, also_read)}
        self.transcodings = mapper.transcoder.types  # type: ignore[attr-defined] - JSONTranscoder's registry
        self.transcodings_by_name = mapper.transcoder.names  # type: ignore[attr-defined]
        self._last: tuple[Any, dict[str, Any]] = (None, {})  # events saved together often share a timestamp

    def to_stored_event(self, event: Any) -> StoredEvent:
        topic = self.topics.get(type(event))
        if topic is None or getattr(type(event), "class_version", 1) > 1:
            return self.mapper.to_stored_event(event)
        state = dict(vars(event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        try:
            data = orjson.dumps(state, default=self._transcode, option=OPTIONS)
        except TypeError:  # orjson.JSONEncodeError too: a value outside the fast path's promise
            return self.mapper.to_stored_event(event)
        if self.mapper.compressor:
            data = self.mapper.compressor.compress(data)
        if self.mapper.cipher:
            data = self.mapper.cipher.encrypt(data)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version,
                           topic=topic, state=data)

    def _transcode(self, value: Any) -> dict[str, Any]:
        if value is self._last[0]:
            return self._last[1]
        transcoding = self.transcodings.get(type(value))
        if transcoding is None:
            raise TypeError(type(value))
        wrapped = {"_type_": transcoding.name, "_data_": transcoding.encode(value)}
        if type(value) is datetime:  # immutable: safe to answer again by identity
            self._last = (value, wrapped)
        return wrapped

    def to_domain_event(self, stored: Any) -> Any:
        """What `mapper.to_domain_event(stored)` returns (`stored`: a StoredEvent or Notification)."""
        if stored.topic not in self.read_topics:
            return self.mapper.to_domain_event(stored)
        data = stored.state
        if self.mapper.cipher:
            data = self.mapper.cipher.decrypt(data)
        if self.mapper.compressor:
            data = self.mapper.compressor.decompress(data)
        if NINETEEN_DIGITS in data.translate(DIGITS_ONLY):  # faster than a regular expression
            return self.mapper.to_domain_event(stored)
        try:
            state = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self.mapper.to_domain_event(stored)
        if WRAPPED in data and not self._unwrap(state, data.count(WRAPPED)):
            return self.mapper.to_domain_event(stored)
        cls = resolve_topic(stored.topic)
        state["originator_id"] = find_id_convertor(cls, type(stored.originator_id))(stored.originator_id)
        state["originator_version"] = stored.originator_version
        from_version, class_version = state.pop("class_version", 1), getattr(cls, "class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event

    def _unwrap(self, state: dict[str, Any], wrapped: int) -> bool:
        """Unwrap the top-level wrapped values; False unless they were all there are."""
        for name, value in state.items():
            if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
                transcoding = self.transcodings_by_name.get(value["_type_"])
                if transcoding is None:
                    return False
                state[name] = transcoding.decode(value["_data_"])
                wrapped -= 1
        return wrapped == 0
