"""Stream processing on Kafka for Python: batch agents, per-key tables, a producer service.

Downstream code needs only this module::

    from streams import Message, PerKeyTable, batch_agent
"""

from streams.agents import BatchAgent, batch_agent
from streams.app import create_app, discover_deployment
from streams.errors import (
    BrokerUnreachableError,
    DecodeError,
    SettingsError,
    StreamsError,
    TableError,
)
from streams.models import Message
from streams.settings import Settings
from streams.tables import PerKeyTable

__all__ = [
    "BatchAgent",
    "BrokerUnreachableError",
    "DecodeError",
    "Message",
    "PerKeyTable",
    "Settings",
    "SettingsError",
    "StreamsError",
    "TableError",
    "batch_agent",
    "create_app",
    "discover_deployment",
]
