# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The slow path of raw tick and lot counts (the fast paths are inline in ``_units.pxd``).

The pure-Python backend converts with :mod:`tradebook._numeric` alone; the
compiled one tries ``_units.pxd`` first and falls back to the same functions.
"""

from tradebook._numeric import check_units


cdef int64_t check_raw(object value, str what, object error) except 0:
    """Anything but an exact small int: checked (and converted, or refused) by ``check_units``."""
    return check_units(value, what, error)
