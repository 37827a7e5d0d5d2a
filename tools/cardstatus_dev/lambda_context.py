"""The Lambda context the local stack hands the real handlers: the parts of it that Powertools
and our handlers read (name, ARN, memory, log group, request id, time left)."""

from __future__ import annotations

import time
import uuid

ACCOUNT = "000000000000"


class LocalContext:
    """The context of one invocation of functions/<function> in the local stack."""

    function_version = "$LATEST"
    log_stream_name = "local"

    def __init__(self, function: str = "api", timeout_ms: int = 10_000, memory_mb: int = 256):
        self.function_name = f"cardstatus-{function}-local"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
