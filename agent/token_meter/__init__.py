"""token-meter: the VM agent's side of prepaid token billing.

Records usage, spools it in SQLite, and debits it through the debit function's Invoke API
exactly once, across crashes, throttling and timeouts. See README.md.
"""

from .actions import ACTIONS
from .credentials import Credentials, file_provider
from .meter import Meter, OnExhausted
from .session import VmSession
from .spool import Batch, SpoolStatus, State

__version__ = "0.1.0"
__all__ = [
    "ACTIONS",
    "Batch",
    "Credentials",
    "Meter",
    "OnExhausted",
    "SpoolStatus",
    "State",
    "VmSession",
    "file_provider",
]
