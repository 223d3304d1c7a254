"""Stream processing on Kafka for Python: batch agents, per-key tables, a producer service.

Downstream code needs only this module::

    from streams import Message, PerKeyTable, batch_agent
"""
