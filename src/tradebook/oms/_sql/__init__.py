"""What the SQLite and PostgreSQL adapters share: one description of the schema, in SQL.

:mod:`.columns` (column lists), :mod:`.codecs` (rows to records and back, with
each dialect's converters), :mod:`.migrations` (one loader and one apply loop)
and :mod:`.queries` (the statements both send, in either placeholder style).
The adapters add only their I/O, as ``psycopg_pool``'s ``pool.py`` and
``pool_async.py`` do over ``base.py``.
"""
