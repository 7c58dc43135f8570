"""The loop dumps a framework writes from its training loop (rollouts, train batches, metrics): their pydantic
models and published JSON Schemas, and streaming readers whose every error names the file and line."""
from ._models import (BATCHES_SCHEMA, DOCUMENTS, METRICS_SCHEMA, ROLLOUTS_SCHEMA, MetricsLine, RolloutLine,
                      ServedCall, TrainLine, line_json_schema)
from ._read import DumpError, parse_line, read_dump

__all__ = ["BATCHES_SCHEMA", "DOCUMENTS", "METRICS_SCHEMA", "ROLLOUTS_SCHEMA", "DumpError", "MetricsLine",
           "RolloutLine", "ServedCall", "TrainLine", "line_json_schema", "parse_line", "read_dump"]
