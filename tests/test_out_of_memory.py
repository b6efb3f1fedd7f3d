"""Running out of memory while a book grows raises MemoryError and leaves a working book.

Each case runs in a child process whose address space is capped (``RLIMIT_AS``) a
little above what it already uses, then adds orders until an allocation fails:
the record array, the level array, the price tree or the id map, depending on the
headroom. The book must pass ``_check()`` afterwards, find and cancel its orders,
and keep growing once the cap is lifted. (The compiled id map used to free its
table before the bigger one was allocated: the next look-up read a NULL table.)
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/self/statm")

CHILD = textwrap.dedent(
    """
    import importlib, os, resource, sys
    from tradebook import Instrument
    books = importlib.import_module(sys.argv[1])
    headroom = int(sys.argv[2])
    book = books.OrderBook(Instrument("X/Y", "1", "1"))
    for i in range(3000):  # string ids: records fill up faster than the int id map
        book.add_raw(f"s{i}", "BUY", 5, 1)
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (used + headroom, hard))
    n = 0
    try:
        while n < 3_000_000:
            book.add_raw(n, "BUY" if n % 2 else "SELL", 20000 + (n % 5000) * (1 if n % 2 else -1) + (0 if n % 2 else 10000), 1)
            n += 1
    except MemoryError:
        pass
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    book._check()
    # the pure book may have finished the add whose bookkeeping here (n += 1) then failed
    assert len(book) - 3000 in (n, n + 1), (len(book), n)
    n = len(book) - 3000
    if n:
        assert book.remove_raw(n - 1) == 1
    assert book.remove_raw("s7") == 1
    for k in range(n, n + 20000):
        book.add_raw(k, "BUY", 7, 1)
    book._check()
    print("clean", n)
    """
)


@pytest.mark.parametrize("headroom_kib", [256, 512, 768, 1024, 1536, 2048, 3072, 4096, 8192])
def test_a_failed_allocation_leaves_a_working_book(backend, headroom_kib: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, backend.book_module.__name__, str(headroom_kib * 1024)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert proc.stdout.startswith("clean"), proc.stdout
