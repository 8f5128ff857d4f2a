"""One structured JSON log line per request, and the JSON formatter for every log line.

Prompts and completions appear only for tenants that opted in (`log_content: true`);
API keys never appear (they are not part of any record).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.metrics import RequestRecord

log = logging.getLogger("gateway.access")


def write(record: RequestRecord) -> None:
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "tenant": record.tenant,
        "route": record.route,
        "outcome": record.outcome,
        "status": record.status,
        "code": record.code,
        "model": record.model,
        "duration_ms": round(record.duration_s * 1000, 1),
        "ttft_ms": round(record.ttft_s * 1000, 1) if record.ttft_s is not None else None,
    }
    if record.usage is not None:
        fields["input_tokens"] = record.usage.input_tokens
        fields["output_tokens"] = record.usage.output_tokens
        if record.usage.cache_read_tokens or record.usage.cache_write_tokens:
            fields["cache_read_tokens"] = record.usage.cache_read_tokens
            fields["cache_write_tokens"] = record.usage.cache_write_tokens
    if record.cost_usd is not None:
        fields["cost_usd"] = round(record.cost_usd, 6)
    if record.stats is not None:
        fields["targets_tried"] = record.stats.models_tried
        fields["retries"] = record.stats.retries
        fields["fallbacks"] = record.stats.fallbacks
        if record.stats.dropped_params:
            fields["dropped_params"] = sorted(record.stats.dropped_params)
    if record.content:
        fields.update(record.content)
    log.info("request", extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()
