"""Every private name of faust-streaming, mode-streaming and aiokafka the platform uses.

One `PrivateName` per name: its owner (`module:Class`, or a module), how it is used, where
(in streams/_faust, or the class that overrides a public method whose behaviour the
platform relies on), why, and what upstream would have to offer to drop it. For methods,
the signature and the SHA-256 of the source the platform copied, overrides or calls, as
verified with the versions in `streams._faust.versions.VERIFIED`.

tests/unit/test_faust_boundary.py checks each entry against the installed packages and
that every private name used in streams/_faust is listed here. INVENTORY.md is rendered
from this module: `python -m streams._faust.inventory > streams/_faust/INVENTORY.md`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from streams._faust.versions import VERIFIED

DISTRIBUTIONS = {"faust": "faust-streaming", "mode": "mode-streaming", "aiokafka": "aiokafka"}


@dataclass(frozen=True)
class PrivateName:
    """One name of an upstream package the platform relies on (see the module)."""

    owner: str
    name: str
    use: str
    used_in: str
    why: str
    upstream: str
    signature: str | None = None
    source_sha256: str | None = None

    @property
    def distribution(self) -> str:
        return DISTRIBUTIONS[self.owner.split(".")[0]]

    @property
    def private(self) -> bool:
        return self.name.startswith("_")

    @property
    def qualified(self) -> str:
        return f"{self.owner}.{self.name}"


INVENTORY: tuple[PrivateName, ...] = (
    PrivateName(
        'faust.transport.consumer:Consumer', '_drain_messages', 'override',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why=("Faust's fetch loop, copied: batch-agent records go to their agents' queues "
             'in bulk, RocksDB changelogs to the recovery queue undecoded, source records '
             "pass the fetch-order check; Faust's path costs two tasks and an asyncio.wait"
             ' per record'),
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
        signature='(self, fetcher: mode.types.services.ServiceT) -> None',
        source_sha256='44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_new_offset', 'override',
        used_in='streams/_faust/consumer.py HookedConsumer._new_offset',
        why='the next offset to commit, never past an offset nobody acknowledged (`may_commit`)',
        upstream=('a commit-policy hook, or a rule that never commits past an unacknowledged '
                  "head or before the generation's seek"),
        signature='(self, tp: faust.types.tuples.TP) -> Optional[int]',
        source_sha256='1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_commit_offsets', 'override',
        used_in='streams/_faust/consumer.py HookedConsumer._commit_offsets',
        why=('Faust records the offsets as committed even when the commit failed ("already '
             "rebalanced\"): the commit rule's base was then an offset the group never "
             'committed'),
        upstream='recording a commit only when it was made',
        signature=('(self, offsets: Mapping[faust.types.tuples.TP, int], '
                   'start_new_transaction: bool = True) -> bool'),
        source_sha256='1a6979904118844111259d182ca1c6e92ccc16364ccbe55c58e59d6e254a7adb',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_acked', 'read',
        used_in='streams/_faust/consumer.py HookedConsumer._new_offset',
        why='the lowest acknowledged offset, for `may_commit`',
        upstream='the commit-policy hook, given the acknowledged head',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_committed_offset', 'read, write',
        used_in=('streams/_faust/consumer.py HookedConsumer._new_offset, _commit_offsets, '
                 'committed_offsets, seek_while_flow_stopped'),
        why=("the commit rule's base; commit rounds that moved an offset are timed; a seek "
             "while the flow is stopped must not set it back (a copy of `perform_seek`); "
             'a failed commit must not set it'),
        upstream='a public view of the committed offsets',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_gap', 'read, write',
        used_in='streams/_faust/consumer.py HookedConsumer.gaps, note_no_records',
        why=('offsets known to hold no record: noted after the broker confirmed a jump, '
             'read by the commit rule and the exactly-once positions'),
        upstream='a public gap API that can include the committed offset itself',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', 'getmany', 'copy',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why=('folded into the copied fetch loop: its per-record generation, flow and '
             'partition checks and highwater metric are done once per partition and fetch'),
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
        signature=('(self, timeout: float) -> AsyncIterator[Tuple[faust.types.tuples.TP, '
                   'faust.types.tuples.Message]]'),
        source_sha256='4b168d84882a70d6e3e2f9804430a63b92f8fd117d3187cbb4aeb54305bda34e',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_wait_next_records', 'call',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why="the fetch of Faust's getmany, whose records the copied fetch loop takes by partition",
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
        signature=('(self, timeout: float) -> Tuple[Optional[Mapping[faust.types.tuples.TP, '
                   'List[Any]]], Optional[Set[faust.types.tuples.TP]]]'),
        source_sha256='6218e1969a636b3ff504ad1b8e7ad58a113572e43d746cc96d684ed5153032c6',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:Consumer', '_to_message', 'call',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why="the fetched record as Faust's ConsumerMessage, as Faust's getmany builds it",
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
        signature=('(self, tp: faust.types.tuples.TP, record: Any) -> '
                   'faust.types.tuples.ConsumerMessage'),
        source_sha256='7c24f6511b2fcef7cbfe73526e78de033bfe0df211f1fd30509d699c9deb6ce4',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_buffered_partitions', 'read',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why="Faust's getmany delivers records of these partitions too (copied check)",
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
    ),
    PrivateName(
        'mode.utils.queues:ThrowableQueue', '_errors', 'read',
        used_in='streams/_faust/consumer.py take_nowait',
        upstream='a get_many(n) on mode queues',
        why='errors thrown into the queue are raised before a bulk take, as by get_nowait',
    ),
    PrivateName(
        'mode.utils.queues:FlowControlQueue', 'force_put_nowait', 'copy',
        used_in='streams/_faust/consumer.py put_all_nowait',
        upstream='a put_many on mode queues',
        why=("a partition's fetched records put on a batch agent's queue together, its "
             'getter woken once'),
        signature='(self, item: ~_T) -> None',
        source_sha256='e029f3d278247909418b976a3a88c8569c5e945959343b65c0385d62aa5bec31',
    ),
    PrivateName(
        'mode.utils.queues:ThrowableQueue', '_unfinished_tasks', 'write',
        used_in='streams/_faust/consumer.py put_all_nowait',
        upstream='a put_many on mode queues',
        why='counted per item put, as force_put_nowait does (asyncio.Queue internals)',
    ),
    PrivateName(
        'mode.utils.queues:ThrowableQueue', '_finished', 'call',
        used_in='streams/_faust/consumer.py put_all_nowait',
        upstream='a put_many on mode queues',
        why='cleared by a put, as force_put_nowait does (asyncio.Queue internals)',
    ),
    PrivateName(
        'mode.utils.queues:ThrowableQueue', '_getters', 'read',
        used_in='streams/_faust/consumer.py put_all_nowait',
        upstream='a put_many on mode queues',
        why='the agent waiting for records, woken once per bulk put',
    ),
    PrivateName(
        'mode.utils.queues:ThrowableQueue', '_queue', 'read, write',
        used_in='streams/_faust/consumer.py take_nowait and put_all_nowait',
        upstream='a get_many(n) on mode queues',
        why=("a batch agent takes up to a batch of events at once from its queue's deque "
             '(asyncio.Queue internals: get_nowait per event cost a tenth of a sink job)'),
    ),
    PrivateName(
        'mode.utils.queues:ThrowableQueue', '_putters', 'read',
        used_in='streams/_faust/consumer.py take_nowait',
        upstream='a get_many(n) on mode queues',
        why='wake a waiting putter after a bulk take, as asyncio.Queue.get_nowait does',
    ),
    PrivateName(
        'mode.utils.queues:ThrowableQueue', '_wakeup_next', 'call',
        used_in='streams/_faust/consumer.py take_nowait and put_all_nowait',
        upstream='a get_many(n) on mode queues',
        why='wake a waiting putter after a bulk take, as asyncio.Queue.get_nowait does',
        signature='(self, waiters)',
        source_sha256='b53f54f91a2d9393033d8c3505e4dc65aececcb4b12791f3cab06525070b063a',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', 'ack', 'copy',
        used_in='streams/_faust/events.py ack_all',
        upstream='a bulk ack on the consumer (ack many messages under one lock)',
        why=("a batch's events acked under one lock, with one wake-up of the ack waiters "
             "(Faust's per-event chain took the lock four times per record)"),
        signature='(self, message: faust.types.tuples.Message) -> bool',
        source_sha256='5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f',
    ),
    PrivateName(
        'faust.types.tuples:Message', 'ack', 'copy',
        used_in='streams/_faust/events.py ack_all',
        upstream='a bulk ack on the consumer (ack many messages under one lock)',
        why='the refcount step of an event ack, copied into the bulk ack',
        signature='(self, consumer: faust.types.tuples._ConsumerT, n: int = 1) -> bool',
        source_sha256='4751b72c4ed84153a7b6c14fdfe41cc92e477b38a6c6089cb785532ef5771688',
    ),
    PrivateName(
        'faust.types.tuples:Message', 'incref', 'copy',
        used_in='streams/_faust/events.py incref_all',
        upstream='a bulk incref (many messages under one lock)',
        why=("a partition's fetched records counted as handed to the agents under one "
             "lock (Faust's takes it per record)"),
        signature='(self, n: int = 1) -> None',
        source_sha256='78d34df830d3089b463d2bbc6e06892fa49b427f5b9340e0f69032e825ef7cbf',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', 'track_message', 'copy',
        used_in='streams/_faust/events.py track_all',
        upstream='a bulk track on the consumer (track many messages, sensors told once)',
        why=("a batch's events tracked as in hand together, with only the sensors that "
             "listen for records called (Faust's walks every sensor per record)"),
        signature='(self, message: faust.types.tuples.Message) -> None',
        source_sha256='217d7f1399a4cd8e15a43a64ecf50413b9b738058e5433e057f0dc3927a3fc03',
    ),
    PrivateName(
        'faust.sensors.monitor:Monitor', 'on_message_in', 'copy',
        used_in='streams/_faust/events.py tell_monitor',
        upstream='a bulk track on the consumer (track many messages, sensors told once)',
        why=("Faust's monitor told of a batch's records once per partition (one call per "
             'record was most of the cost of tracking a batch)'),
        signature=('(self, tp: faust.types.tuples.TP, offset: int, '
                   'message: faust.types.tuples.Message) -> None'),
        source_sha256='b2a9a9045b2f456cc736fdbf99f47f4f45335896050c9e48703dfc8146ca51ea',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', 'wait_empty', 'rely',
        used_in='streams/_faust/events.py InHand',
        upstream='a bulk track on the consumer (track many messages, sensors told once)',
        why=("waits while the set of messages in hand is not empty and logs each entry's "
             "refcount: an InHand entry stands for records taken together"),
        signature='(self) -> None',
        source_sha256='e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_clean_unacked_messages', 'rely',
        used_in='streams/_faust/events.py InHand',
        upstream='a bulk track on the consumer (track many messages, sensors told once)',
        why="drops the entries of the set of messages in hand whose acked is true",
        signature='(self) -> None',
        source_sha256='11be2587e71c9162510ba634577e1da5122d734dfe04e3cb1374cbc884fd3d23',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_acked_index', 'read, write',
        used_in='streams/_faust/events.py ack_all',
        upstream='a bulk ack on the consumer (ack many messages under one lock)',
        why='the offsets acked and not committed yet, as Consumer.ack keeps them',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_waiting_for_ack', 'read',
        used_in='streams/_faust/events.py ack_all',
        upstream='a bulk ack on the consumer (ack many messages under one lock)',
        why='woken once per batch acked, as Consumer.ack does per record',
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_read_offset', 'read, write',
        used_in=('streams/_faust/consumer.py HookedConsumer._drain_messages, '
                 'seek_while_flow_stopped'),
        why='the copied fetch loop (`HookedConsumer._drain_messages`)',
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_n_acked', 'read, write',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why='the copied fetch loop (`HookedConsumer._drain_messages`)',
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_commit_every', 'read',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why='the copied fetch loop (`HookedConsumer._drain_messages`)',
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
    ),
    PrivateName(
        'mode.services:Service', '_stopped', 'read',
        used_in='streams/_faust/consumer.py HookedConsumer._drain_messages',
        why='the copied fetch loop (`HookedConsumer._drain_messages`)',
        upstream=("a delivery hook in Faust's fetch loop (take a record for a topic directly, "
                  'or decide whether a fetched record is delivered)'),
    ),
    PrivateName(
        'faust.transport.consumer:Consumer', '_unacked_messages', 'read, write',
        used_in=('streams/_faust/app.py FaustApp._consumer_wait_empty; events.py track_all, '
                 'ack_all, let_go_all'),
        why=('a shutdown that gave up waiting empties the set Faust waits on, so that it '
             'commits what was acked and returns (cancelling its wait does not end it); '
             'records taken together enter it as one entry and leave it when acked, or '
             'unacked when their batch is abandoned'),
        upstream='a timeout for the stream-wait-empty step',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:Consumer', '_new_consumer_thread', 'override',
        used_in='streams/_faust/consumer.py HookedConsumer._new_consumer_thread',
        why='creates `BrokerHighwaterThread`',
        upstream='a consumer-thread class attribute, or the highwater fix below',
        signature="(self) -> 'AIOKafkaConsumerThread'",
        source_sha256='0870ec53dea75083995e3565c0f0a25a1c63ecceaeb238e92e2585e3623af5a9',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:AIOKafkaConsumerThread', '_highwaters', 'override',
        used_in='streams/_faust/consumer.py BrokerHighwaterThread._highwaters',
        why=('changelog highwaters from the broker (end_offsets) under read_committed; '
             "Faust's cached last stable offset is stale or -1 before the first fetch"),
        upstream='highwaters asked from the broker under read_committed',
        signature=('(self, partitions: List[faust.types.tuples.TP]) -> '
                   'Mapping[faust.types.tuples.TP, int]'),
        source_sha256='a7f4f97d9f32aca2777713e22671d70eae4b3ae51541bb09a90448ce83acefce',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:AIOKafkaConsumerThread', '_create_worker_consumer',
        'override',
        used_in='streams/_faust/consumer.py BrokerHighwaterThread._create_worker_consumer',
        why=("Faust's worker consumer with the fetch long-poll of FETCH_MAX_WAIT_MS: Faust "
             'fixes it at 1.5 s, and a fetch of quiet partitions held back the next fetch of '
             'busy ones that long (a third of a sink job\'s throughput)'),
        upstream='a fetch_max_wait_ms setting in Faust',
        signature=("(self, transport: 'Transport') -> "
                   'aiokafka.consumer.consumer.AIOKafkaConsumer'),
        source_sha256='c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7',
    ),
    PrivateName(
        'aiokafka.consumer.consumer:AIOKafkaConsumer', '_fetch_max_wait_ms', 'write',
        used_in='streams/_faust/consumer.py BrokerHighwaterThread._create_worker_consumer',
        why='set after Faust created the consumer, read when it starts and creates its fetcher',
        upstream='a fetch_max_wait_ms setting in Faust',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:AIOKafkaConsumerThread', '_ensure_consumer', 'call',
        used_in='streams/_faust/consumer.py BrokerHighwaterThread._highwaters',
        why='the aiokafka consumer to ask for end offsets',
        upstream='the highwater fix above',
        signature='(self) -> aiokafka.consumer.consumer.AIOKafkaConsumer',
        source_sha256='ff4a4c693b7ec63f4a76dfb61c419380bef70dd32383fe38ebcfcc27091605a6',
    ),
    PrivateName(
        'faust.app.base:App', '_consumer_wait_empty', 'override, call',
        used_in=('streams/_faust/app.py FaustApp._consumer_wait_empty, consumer.py '
                 'HookedConsumer.wait_for_batches_in_hand'),
        why=('the wait for the batches in hand, bounded by SHUTDOWN_TIMEOUT_S, also taken '
             'before a revoke forgets the acknowledgements'),
        upstream=('a timeout for stream-wait-empty, and a revoke that waits for the batches in '
                  'hand before it forgets acknowledgements'),
        signature='(self, consumer: faust.types.transports.ConsumerT, logger: Any) -> None',
        source_sha256='6bc313c48c064b1626be9fb38fcc8760ec731ac15305bf42a038742b9b7ad4be',
    ),
    PrivateName(
        'faust.app.base:App', '_new_transport', 'override',
        used_in='streams/_faust/app.py FaustApp._new_transport',
        why="the app's transport creates the platform's consumer",
        upstream=('a setting naming the transport (or consumer) class; Faust picks it from the '
                  'broker URL scheme only'),
        signature='(self) -> faust.types.transports.TransportT',
        source_sha256='42db531312dd776fc3937154a32f19eeb9ad7d4ebc2722a92d081a2d271baea1',
    ),
    PrivateName(
        'faust.app.base:App', '_consumer', 'read',
        used_in=('streams/_faust/transactions.py consumer_isolation_level; '
                 'streams/_faust/recovery.py RestoreFirstTableManager.queue_cleared'),
        why=('the consumer, if started, without creating one (for /metrics; the '
             'recovery queue emptied before the consumer exists)'),
        upstream="a public 'started consumer or None'",
    ),
    PrivateName(
        'faust.app.base:App', '_producer', 'read',
        used_in='streams/_faust/transactions.py started_transactional_ids',
        why='the producer, if started, without creating one (for /metrics)',
        upstream="a public 'started producer or None'",
    ),
    PrivateName(
        'faust.transport.consumer:ThreadDelegateConsumer', '_thread', 'read',
        used_in='streams/_faust/transactions.py consumer_isolation_level',
        why='the consumer thread, if created',
        upstream="the consumer's isolation level as a public attribute",
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:AIOKafkaConsumerThread', '_consumer', 'read',
        used_in='streams/_faust/transactions.py consumer_isolation_level',
        why='the running aiokafka consumer',
        upstream="the consumer's isolation level as a public attribute",
    ),
    PrivateName(
        'aiokafka.consumer.consumer:AIOKafkaConsumer', '_isolation_level', 'read',
        used_in='streams/_faust/transactions.py consumer_isolation_level',
        why='the isolation level the running consumer really uses (/metrics)',
        upstream='a public isolation_level attribute in aiokafka',
    ),
    PrivateName(
        'aiokafka.consumer.consumer:AIOKafkaConsumer', '_client', 'read',
        used_in='streams/_faust/clients.py refresh_metadata',
        why='force a metadata refresh to see topics created after the consumer started',
        upstream='a public metadata refresh on AIOKafkaConsumer',
    ),
    PrivateName(
        'aiokafka.producer.producer:AIOKafkaProducer', '_txn_manager', 'read',
        used_in='streams/_faust/transactions.py in_transaction, started_transactional_ids',
        why='whether a transactional producer has a transaction open, and its transactional id',
        upstream='public in_transaction() and transactional_id on AIOKafkaProducer',
    ),
    PrivateName(
        'aiokafka.producer.producer:AIOKafkaProducer', '_sender', 'read',
        used_in='streams/_faust/clients.py close_sender',
        why=("end an idempotent producer's sender, whose stop() waits forever while no "
             'broker answers'),
        upstream='a stop(timeout) on AIOKafkaProducer that gives up in-flight batches',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:Producer', '_settings_extra', 'override',
        used_in='streams/_faust/producers.py IdempotentProducer._settings_extra',
        why=('the worker producer is idempotent under at-least-once too: a batch retried '
             'after a leader failover is written once'),
        upstream='a producer_enable_idempotence setting',
        signature='(self) -> Mapping[str, Any]',
        source_sha256='a4c7bc41b63822236e4c9be1c49437d091f58c1b3a983eecabb7362a819aa8bd',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:Producer', 'maybe_begin_transaction', 'override',
        used_in='streams/_faust/producers.py IdempotentProducer.maybe_begin_transaction',
        why=('a partition kept through a rebalance keeps its open transaction; beginning '
             'another only logged an invalid state transition'),
        upstream='maybe_begin_transaction doing what its docstring says',
        signature='(self, transactional_id: str) -> None',
        source_sha256='3457d161832d684e7c27e3f083a14b040c6df7cf716c573e982026b1b67e3c95',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:Producer', '_ensure_producer', 'call',
        used_in='streams/_faust/producers.py aiokafka_producer',
        why=("the started aiokafka producer behind Faust's, to hand it a batch's sink and "
             'changelog records as record batches (one future per batch, not per record)'),
        upstream="a bulk send on Faust's producer, or a public accessor of its client",
        signature='(self) -> aiokafka.producer.producer.AIOKafkaProducer',
        source_sha256='5592a4bbdf2513253f98233a4eac931ded2a531a86f269cddcc33bc3f5827db5',
    ),
    PrivateName(
        'faust.transport.drivers.aiokafka:Producer', '_transaction_producers', 'read',
        used_in='streams/_faust/transactions.py transaction_producer, started_transactional_ids',
        why=('the aiokafka producer Faust keeps for a transactional id, to commit each '
             "batch part's transaction with its offsets"),
        upstream=('a public accessor of the transactional producer of a partition, or batch-'
                  'scoped transactions in Faust'),
    ),
    PrivateName(
        'faust.transport.base:Transport', 'TransactionManager', 'monkeypatch',
        used_in='streams/_faust/transactions.py use_transaction_manager',
        why=('exactly-once transactions per batch part instead of a timer (set on the '
             "app's transport instance)"),
        upstream='a setting naming the transaction manager class',
    ),
    PrivateName(
        'faust.transport.consumer:TransactionManager', 'send', 'override',
        used_in='streams/processing/transactions.py BatchTransactionManager.send',
        why=("records go in the source partition's transaction, also to topics the app "
             'does not consume'),
        upstream='batch-scoped transactions',
        signature=('(self, topic: str, key: Optional[bytes], value: Optional[bytes], partition: '
                   'Optional[int], timestamp: Optional[float], headers: Union[List[Tuple[str, '
                   'bytes]], Mapping[str, bytes], NoneType], *, transactional_id: Optional[str] '
                   '= None) -> Awaitable[faust.types.tuples.RecordMetadata]'),
        source_sha256='b8d126be9f10fc6987627523f550b79158457c2daa17278b6a012936f4cd2138',
    ),
    PrivateName(
        'faust.transport.consumer:TransactionManager', 'commit', 'override',
        used_in='streams/processing/transactions.py BatchTransactionManager.commit',
        why='the timer commit does nothing: each batch part commits its own transaction',
        upstream='batch-scoped transactions',
        signature=('(self, offsets: Mapping[faust.types.tuples.TP, int], start_new_transaction: '
                   'bool = True) -> bool'),
        source_sha256='fbb29c3467ac8bfad1c36d7b87f31940f0b3912a6ccc239cd8b58aee02a3e60b',
    ),
    PrivateName(
        'faust.tables.manager:TableManager', '_changelogs', 'read',
        used_in='streams/_faust/tables.py changelog_table',
        why='the table of a changelog topic',
        upstream='a public lookup of a table by changelog topic',
    ),
    PrivateName(
        'faust.tables.base:Collection', '_on_changelog_event', 'read, write',
        used_in='streams/_faust/tables.py add_changelog_callback, has_own_changelog_callback',
        why=('count the changelog records applied per partition (recovery progress) '
             "besides the table's own callback; a table with its own callback is not "
             'restored in bulk (the callback needs every record as an event)'),
        upstream='a list of changelog-event callbacks, or a sensor call per applied record',
    ),
    PrivateName(
        'faust.tables.base:Collection', 'send_changelog', 'monkeypatch',
        used_in='streams/_faust/tables.py on_changelog_send',
        why="a batch part's transaction waits for the changelog records it caused",
        upstream='a callback or sensor with the future of each changelog record',
        signature=('(self, partition: Optional[int], key: Any, value: Any, key_serializer: '
                   'Union[faust.types.codecs.CodecT, str, NoneType] = None, value_serializer: '
                   'Union[faust.types.codecs.CodecT, str, NoneType] = None) -> '
                   'faust.types.tuples.FutureMessage'),
        source_sha256='3dd3884e1b5fc0e1612bc688b83d9318a1805ddc49700d3b6b37bade73c3905d',
    ),
    PrivateName(
        'faust.tables.base:Collection', '_should_expire_keys', 'call',
        used_in='streams/_faust/tables.py track_window_expiry',
        why="writes made in bulk (not through __setitem__) keep a windowed table's expiry index",
        upstream='a public bulk write on tables that keeps the expiry index',
        signature='(self) -> bool',
        source_sha256='ac578d5af0a404f697faa873b912b8b8a4ba808250fef6dd3aeb6c1b279cf2c5',
    ),
    PrivateName(
        'faust.tables.base:Collection', '_maybe_set_key_ttl', 'call',
        used_in='streams/_faust/tables.py track_window_expiry',
        why='as above',
        upstream='as above',
        signature='(self, key: Any, partition: int) -> None',
        source_sha256='39b7465fa58038998e628bf0fa80d95be76f5f5ffb851ed8ccbb6f7de83d1a35',
    ),
    PrivateName(
        'faust.tables.base:Collection', '_partition_timestamp_keys', 'read',
        used_in='streams/_faust/tables.py tracked_window_keys',
        why='windows recovered into a worker are added to the expiry index once',
        upstream='expiry of recovered windows in Faust',
    ),
    PrivateName(
        'faust.tables.base:Collection', '_on_changelog_sent', 'copy',
        used_in=('streams/state/writes.py _persist_offset; '
                 'streams/processing/transactions.py persist_when_committed'),
        why=('the persisted changelog offset after a bulk write is recorded as Faust does '
             'after a send; under exactly-once when the batch part commits (Faust keeps it '
             'by changelog partition and writes it for source partitions: never)'),
        upstream='a public bulk write on tables',
        signature='(self, fut: faust.types.tuples.FutureMessage) -> None',
        source_sha256='60122c86a120d82cffa95da4c22323e12d67fa82f3112f08ac7f8edde7c47826',
    ),
    PrivateName(
        'faust.tables.recovery:Recovery', '_set_recovery_ended', 'call',
        used_in='streams/_faust/recovery.py end_recovery',
        why=('end a recovery whose changelogs hold only transaction markers, without '
             "Faust's two 5-second waits"),
        upstream='recovery that sees a changelog ending in markers at once',
        signature='(self) -> None',
        source_sha256='84badf3f2cfe0d0206c632a08818f7c89f21c80358e9fba27535f1089761198f',
    ),
    PrivateName(
        'faust.tables.manager:TableManager', 'changelog_queue', 'override',
        used_in='streams/_faust/recovery.py RestoreFirstTableManager.changelog_queue',
        why=("Faust's recovery queue, built the same way (`App.FlowControlQueue`, emptied "
             'when the flow resumes), telling the consumer when it is emptied so that the '
             'changelog records it drops are fetched again'),
        upstream=('a recovery that fetches again what its queue dropped, or no emptying of '
                  'the changelog queue after the recovery seeked its partitions'),
        signature='(self) -> mode.utils.queues.ThrowableQueue',
        source_sha256='9c7f4cac57ef170647f12c135f4419000d27be45c536bf07ec013d8d3d028e2e',
    ),
    PrivateName(
        'faust.tables.recovery:Recovery', 'on_rebalance', 'override',
        used_in='streams/_faust/recovery.py RestoreFirstRecovery.on_rebalance',
        why=('the bulk restore runs first, in a task, and then calls it: it must still only '
             'record the assignment and persisted offsets and wake the recovery loop, '
             'without awaiting anything'),
        upstream='a restore hook between the assignment and the recovery loop',
        signature=('(self, assigned: Set[faust.types.tuples.TP], revoked: '
                   'Set[faust.types.tuples.TP], newly_assigned: Set[faust.types.tuples.TP], '
                   'generation_id: int = 0) -> None'),
        source_sha256='aa4d997a1795ceae3880f98311b46935d9ae1a183a699b9a283bb4306bc8641f',
    ),
    PrivateName(
        'faust.tables.recovery:Recovery', 'on_partitions_revoked', 'override',
        used_in='streams/_faust/recovery.py RestoreFirstRecovery.on_partitions_revoked',
        why=('the first step of every rebalance (before stores close revoked partitions): '
             'the bulk restore is cancelled there'),
        upstream='a restore hook between the assignment and the recovery loop',
        signature='(self, revoked: Set[faust.types.tuples.TP]) -> None',
        source_sha256='161b5e997f7cbfefbcc6476066dab2230f1857311bfdc6332872966c285af481',
    ),
    PrivateName(
        'faust.tables.recovery:Recovery', '_build_highwaters', 'override',
        used_in='streams/_faust/recovery.py RestoreFirstRecovery._build_highwaters',
        why=("after a bulk restore, the active highwaters are the end offsets the restore "
             "has just read to; asking again through the worker's consumer waits behind "
             'its 1.5 s fetch long-poll'),
        upstream='a restore hook between the assignment and the recovery loop',
        signature=('(self, consumer: faust.types.transports.ConsumerT, tps: '
                   'Set[faust.types.tuples.TP], destination: Counter[faust.types.tuples.TP], '
                   'title: str) -> None'),
        source_sha256='91b4cc0d3724ae7bfc398e873684fc6f667ef8feb61a3b3314346ef11f2823de',
    ),
    PrivateName(
        'faust.tables.recovery:Recovery', '_build_offsets', 'override',
        used_in='streams/_faust/recovery.py RestoreFirstRecovery._build_offsets',
        why=('after a bulk restore, the persisted offsets are at least the earliest offset '
             '- 1, the only other thing Faust asks the broker for here'),
        upstream='a restore hook between the assignment and the recovery loop',
        signature=('(self, consumer: faust.types.transports.ConsumerT, tps: '
                   'Set[faust.types.tuples.TP], destination: Counter[faust.types.tuples.TP], '
                   'title: str) -> None'),
        source_sha256='27eec86be06cb51f66dfd2572be2f9b41acd22c3570239bb5c554bd94e59a1d6',
    ),
    PrivateName(
        'faust.tables.manager:TableManager', '_recovery', 'read, write',
        used_in='streams/_faust/recovery.py RestoreFirstTableManager.recovery',
        why="the table manager's recovery service is created as RestoreFirstRecovery",
        upstream='a setting naming the recovery service class',
    ),
    PrivateName(
        'faust.stores.base:Store', '_encode_key', 'call',
        used_in='streams/_faust/store.py encode_key',
        why='the stored and changelog form of a key',
        upstream='public encode/decode on stores',
        signature='(self, key: ~KT) -> bytes',
        source_sha256='70702b179cc3502835585f53bd6b91d2c34308489c2be8cda19ef3b8aa302925',
    ),
    PrivateName(
        'faust.serializers.registry:Registry', '_serializer', 'rely',
        used_in='streams/_faust/store.py encode_key',
        why=('str keys of str-typed tables are encoded as UTF-8 directly, as the raw codec '
             'this picks for typ=str does (the registry call cost a tenth of a table job)'),
        upstream='public encode/decode on stores',
        signature=('(self, typ: Union[Type[faust.types.models.ModelT], Type[bytes], Type[str], '
                   'NoneType], *alt: Union[faust.types.codecs.CodecT, str, NoneType]) -> '
                   'Union[faust.types.codecs.CodecT, str, NoneType]'),
        source_sha256='b4de5184ece7e7536020ae28444e2d05c641cce65bce3f71935de6cc9f360497',
    ),
    PrivateName(
        'faust.stores.base:Store', '_encode_value', 'call',
        used_in='streams/_faust/store.py encode_value',
        why='the stored and changelog form of a value',
        upstream='public encode/decode on stores',
        signature='(self, value: ~VT) -> Optional[bytes]',
        source_sha256='2c46367a493aa13c0a6d992ed04643f9286a75543a800bd661789f4d5f49975e',
    ),
    PrivateName(
        'faust.stores.base:Store', '_decode_key', 'call',
        used_in='streams/_faust/store.py decode_key',
        why='keys read straight from RocksDB',
        upstream='public encode/decode on stores',
        signature='(self, key: Optional[bytes]) -> ~KT',
        source_sha256='fcb649a35b6e5f45a4456220a4b63ee2d2ab90316a270b537a87843c589dc29e',
    ),
    PrivateName(
        'faust.stores.base:Store', '_decode_value', 'call',
        used_in='streams/_faust/store.py decode_value',
        why='values read straight from RocksDB',
        upstream='public encode/decode on stores',
        signature='(self, value: Optional[bytes]) -> ~VT',
        source_sha256='5fe35164ec2e2032bbf746009720537e5f0a8cc35a3a81f8dd6e28e3f0fcb6ca',
    ),
    PrivateName(
        'faust.stores.rocksdb:Store', '_dbs', 'read',
        used_in='streams/_faust/store.py partition_dbs',
        why='ordered scans per partition (table pages, window lookups, key counts)',
        upstream='an ordered scan API per partition',
    ),
    PrivateName(
        'faust.stores.rocksdb:Store', '_db_for_partition', 'call',
        used_in='streams/_faust/store.py write, write_changelog_batch',
        why=('one raw write batch per partition database after the changelog is '
             'acknowledged, and per fetched changelog batch in the bulk restore'),
        upstream='a public bulk write with partitions',
        signature='(self, partition: int) -> Rdict',
        source_sha256='cb7e67d5f9efc4bced7b7ab09a55fe717c352daad5b693594e3f7ca52a98787f',
    ),
    PrivateName(
        'faust.stores.rocksdb:Store', 'apply_changelog_batch', 'copy',
        used_in='streams/_faust/store.py write, write_changelog_batch',
        why=('bulk writes and the bulk restore mimic how recovery writes RocksDB (the '
             'restore also persists the offset the way set_persisted_offset does)'),
        upstream='a public bulk write with partitions',
        signature=('(self, batch: Iterable[faust.types.events.EventT], to_key: Callable[[Any], '
                   'Any], to_value: Callable[[Any], Any]) -> None'),
        source_sha256='ea3344d369fc4ab5e3cdace30565691136035a463acb7b2551fdc0b8af71643b',
    ),
    PrivateName(
        'faust.stores.memory:Store', '_key_partition', 'write',
        used_in='streams/_faust/store.py write',
        why="the in-memory store drops a revoked partition's keys by this index",
        upstream='a public bulk write with partitions',
    ),
    PrivateName(
        'faust.streams', '_current_event', 'import, write',
        used_in='streams/_faust/events.py event_scope',
        why=('table writes need a current event to pick the changelog partition; a batch '
             'handler has none'),
        upstream=('table writes with an explicit partition, or a public current-event context '
                  'manager'),
    ),
    PrivateName(
        'faust.streams:Stream', '_set_current_event', 'copy',
        used_in='streams/_faust/events.py event_scope',
        why='event_scope sets the context variable as the stream loop does',
        upstream='as above',
        signature='(self, event: Optional[faust.types.events.EventT] = None) -> None',
        source_sha256='b9a41294b605ac08c44529e087ad0b907a11c587b2e0fcbecf9ad667a4633e61',
    ),
    PrivateName(
        'faust.models.record:Record', '_options', 'read',
        used_in='streams/_faust/models.py record_fields',
        why="a Record's declared fields, to name unknown or missing ones in decode errors",
        upstream="a public list of a record's fields",
    ),
    PrivateName(
        'faust.serializers.codecs:Codec', '_dumps', 'override',
        used_in='streams/_faust/codecs.py FunctionCodec._dumps',
        why='the window-key codec (Faust codecs are written by overriding these)',
        upstream='public names for the codec hooks',
        signature='(self, s: Any) -> bytes',
        source_sha256='3efd56bca4bce2f97acb9ee82fb15a637f5b076240b0f6b5844cb2b6d1b1087b',
    ),
    PrivateName(
        'faust.serializers.codecs:Codec', '_loads', 'override',
        used_in='streams/_faust/codecs.py FunctionCodec._loads',
        why='as above',
        upstream='as above',
        signature='(self, s: bytes) -> Any',
        source_sha256='02974d34db2ba5c794658ef84b0a615345e664ceee2a5e7a4a69b563a329dba6',
    ),)


def render_markdown() -> str:
    """INVENTORY.md: the inventory as a table per distribution."""
    private = [entry for entry in INVENTORY if entry.private]
    counts = Counter(entry.distribution for entry in private)
    lines = [
        "# Faust internals the platform relies on",
        "",
        "Rendered from `streams/_faust/inventory.py` "
        "(`python -m streams._faust.inventory > streams/_faust/INVENTORY.md`); "
        "tests/unit/test_faust_boundary.py checks both.",
        "",
        "Verified with " + ", ".join(f"{name} {version}" for name, version in VERIFIED.items())
        + f": {len(private)} private names ("
        + ", ".join(f"{counts[name]} of {name}" for name in VERIFIED) + "), and "
        + f"{len(INVENTORY) - len(private)} public methods overridden, replaced or copied "
        "whose behaviour the platform relies on. Entries with a hash fail the boundary test "
        "when the upstream source changes: re-check what `why` says, then update the hash.",
    ]
    for distribution in VERIFIED:
        entries = [entry for entry in INVENTORY if entry.distribution == distribution]
        if not entries:
            continue
        lines += ["", f"## {distribution}", "",
                  "| name | use | where | why | upstream would need to offer |",
                  "| --- | --- | --- | --- | --- |"]
        for entry in entries:
            cells = [f"`{entry.qualified}`" + (" (hashed)" if entry.source_sha256 else ""),
                     entry.use, f"`{entry.used_in}`", entry.why, entry.upstream]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
