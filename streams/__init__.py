"""Stream processing on Kafka for Python: batch agents, per-key tables, a producer service.

Downstream code needs only this module::

    from streams import Message, PerKeyTable, Publisher, batch_agent
"""

from streams.app import create_app, discover_deployment
from streams.backoff import Backoff
from streams.errors import (
    BrokerUnreachableError,
    DecodeError,
    KeyPlacementError,
    PublishError,
    RetryableError,
    SettingsError,
    StreamsError,
    TableError,
)
from streams.kafka.publisher import Outgoing, Publisher, PublisherConfig
from streams.processing.agents import BatchAgent, batch_agent
from streams.processing.models import Message
from streams.settings import Settings
from streams.state.tables import PerKeyTable
from streams.state.windows import Hopping, Tumbling, WindowedTable, WindowValue

__all__ = [
    "Backoff",
    "BatchAgent",
    "BrokerUnreachableError",
    "DecodeError",
    "Hopping",
    "KeyPlacementError",
    "Message",
    "Outgoing",
    "PerKeyTable",
    "PublishError",
    "Publisher",
    "PublisherConfig",
    "RetryableError",
    "Settings",
    "SettingsError",
    "StreamsError",
    "TableError",
    "Tumbling",
    "WindowValue",
    "WindowedTable",
    "batch_agent",
    "create_app",
    "discover_deployment",
]
