"""Named domain errors and how they reach HTTP clients (Vietnamese first, English second)."""

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "domain_error"

    def __init__(self, message_vi: str, message_en: str, **details: Any):
        super().__init__(message_en)
        self.message_vi = message_vi
        self.message_en = message_en
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message_vi, "message_en": self.message_en,
                **self.details}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """409: the request collides with a record that exists; `details` carries it."""

    status_code = 409
    code = "conflict"


class Invalid(DomainError):
    """422 for a rule that pydantic cannot check alone; `field` names the input."""

    status_code = 422
    code = "invalid"

    def __init__(self, field: str, message_vi: str, message_en: str, **details: Any):
        super().__init__(message_vi, message_en, **details)
        self.field = field

    def body(self) -> dict[str, Any]:
        # Same shape as FastAPI's own 422 so clients handle both one way.
        return {"detail": [{"loc": ["body", *self.field.split(".")], "msg": self.message_en,
                            "msg_vi": self.message_vi, "type": self.code}]}


class StoreUnavailable(DomainError):
    """503: the event store cannot be reached or written now; nothing was stored."""

    status_code = 503
    code = "store_unavailable"

    def __init__(self):
        super().__init__("Không lưu được: kho dữ liệu đang không sẵn sàng, chưa có gì được ghi. Vui lòng thử lại sau.",
                         "Not stored: the data store is unavailable and nothing was recorded. Please retry later.")
