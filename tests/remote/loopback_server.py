"""Re-export of ``app.devtools.loopback_server`` (the loopback chat server moved there so the
benchmarks need nothing from ``tests``)."""
from app.devtools.loopback_server import (  # noqa: F401
    DEFAULT_MODEL,
    Behaviour,
    LoopbackChatServer,
    RecordedRequest,
    instance_from_schema,
)
