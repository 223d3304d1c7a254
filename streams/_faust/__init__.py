"""The one place that touches private names of faust-streaming, mode-streaming and aiokafka.

Everything else in `streams` calls the typed functions and classes of these modules. Each
private name used here is listed, with where, why and what upstream would have to offer to
drop it, in `streams._faust.inventory` (rendered as INVENTORY.md next to this file); the
worker refuses to start on dependency versions the inventory was not verified with
(`streams._faust.versions`), and tests/unit/test_faust_boundary.py fails first when an
upgrade changes what is relied on.
"""
