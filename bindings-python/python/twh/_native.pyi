# Stubs of the private native module (src/lib.rs).
# Checked against the compiled module: `python -m mypy.stubtest twh._native`.
from os import PathLike
from typing import Awaitable, Dict, List, Optional, Tuple, Union, final

from typing_extensions import Self

__all__ = ["Client", "Emulator", "__version__", "shutdown", "sign_webhook", "verify_webhook"]
__version__: str

@final
class Client:
    def __new__(
        cls,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        user_agent_suffix: Optional[str] = None,
    ) -> Self: ...
    @staticmethod
    def create_sandbox(
        args: str,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        user_agent_suffix: Optional[str] = None,
    ) -> Tuple[Client, str]: ...
    @staticmethod
    def create_sandbox_async(
        args: str,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        user_agent_suffix: Optional[str] = None,
    ) -> Awaitable[Tuple[Optional[Client], str]]: ...
    @property
    def base_url(self) -> str: ...
    def with_api_key(self, api_key: str) -> Client: ...
    def call(self, op: str, args: str) -> str: ...
    def call_async(self, op: str, args: str) -> Awaitable[Tuple[bool, str]]: ...

@final
class Emulator:
    def __new__(
        cls,
        port: Optional[int] = None,
        rate_limit_per_second: Optional[int] = None,
        rate_limit_burst: Optional[int] = None,
        data_dir: Union[str, PathLike[str], None] = None,
        webhook_retry_schedule_seconds: Optional[List[int]] = None,
        webhook_timeout_ms: Optional[int] = None,
        key_grace_seconds: Optional[int] = None,
        idempotency_ttl_seconds: Optional[int] = None,
        free_quotas: Optional[Dict[str, int]] = None,
    ) -> Self: ...
    @property
    def base_url(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def create_sandbox(self, args: str = "{}") -> Tuple[Client, str]: ...
    def advance_clock(self, seconds: float) -> str: ...
    def inject_fault(self, spec: str) -> str: ...
    def clear_faults(self) -> None: ...
    def stop(self) -> None: ...

def shutdown() -> None: ...
def verify_webhook(
    payload: bytes, headers: Dict[str, str], secret: str, tolerance_seconds: Optional[float] = None
) -> str: ...
def sign_webhook(secrets: List[str], msg_id: str, timestamp: int, payload: bytes) -> Dict[str, str]: ...
