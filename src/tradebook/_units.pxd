# cython: language_level=3
# Exact amounts to integer ticks and lots without Decimal arithmetic: a plain
# decimal string read as m * 10**e, that divided by a grid step, a raw int
# amount checked. Every command goes through here, so all of it is inline; the
# exact slow paths (tradebook._numeric, shared with the pure backend) are not.
from libc.stdint cimport int64_t
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.object cimport PyObject

cdef extern from "Python.h":
    bint PyUnicode_CheckExact(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    int PyUnicode_KIND(object o)
    void* PyUnicode_DATA(object o)
    int PyUnicode_1BYTE_KIND

cdef extern from *:
    """
    static const int64_t TB_POW10[19] = {
        1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL, 1000000000LL,
        10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL, 100000000000000LL,
        1000000000000000LL, 10000000000000000LL, 100000000000000000LL, 1000000000000000000LL
    };
    /* INT64_MAX / 10**i: overflow checks without dividing */
    static const int64_t TB_POW10_ROOM[19] = {
        INT64_MAX, INT64_MAX / 10LL, INT64_MAX / 100LL, INT64_MAX / 1000LL, INT64_MAX / 10000LL,
        INT64_MAX / 100000LL, INT64_MAX / 1000000LL, INT64_MAX / 10000000LL, INT64_MAX / 100000000LL,
        INT64_MAX / 1000000000LL, INT64_MAX / 10000000000LL, INT64_MAX / 100000000000LL,
        INT64_MAX / 1000000000000LL, INT64_MAX / 10000000000000LL, INT64_MAX / 100000000000000LL,
        INT64_MAX / 1000000000000000LL, INT64_MAX / 10000000000000000LL,
        INT64_MAX / 100000000000000000LL, INT64_MAX / 1000000000000000000LL
    };
    """
    const int64_t TB_POW10[19]
    const int64_t TB_POW10_ROOM[19]


cdef extern from *:
    """
    /* CPython's C decimal object (Modules/_decimal/_decimal.c: PyDecObject, with the
       64-bit libmpdec mpd_t inline). Read only after dec_layout_ok() in _book.pyx has
       checked the type, its size and known values; otherwise never touched. */
    typedef struct {
        PyObject_HEAD
        Py_hash_t hash;
        uint8_t flags;
        int64_t exp;
        int64_t digits;
        int64_t len;
        int64_t alloc;
        uint64_t *data;
    } tb_PyDec;
    static inline int tb_dec_parts(PyObject* o, int64_t* m, int* e) {
        tb_PyDec* d = (tb_PyDec*)o;
        uint64_t c;
        if ((d->flags & 15) || d->len != 1) return 0;    /* negative, NaN, infinite; or 19+ digits */
        c = d->data[0];
        if (c == 0 || c >= 1000000000000000000ULL) return 0;
        if (d->exp > 999999 || d->exp < -999999) return 0;
        *m = (int64_t)c;
        *e = (int)d->exp;
        return 1;
    }
    """
    Py_ssize_t TB_PYDEC_SIZE "sizeof(tb_PyDec)"
    bint tb_dec_parts(PyObject* o, int64_t* m, int* e) noexcept


cdef int64_t check_raw(object value, str what, object error) except 0


cdef inline bint parse_decimal(object s, int64_t* mant, int* exp) noexcept:
    """Parse a plain decimal string into a positive ``m * 10**e`` with m < 10**18.

    Returns False (caller takes the slow exact path) for anything else: signs,
    NaN, infinities, zero, more than 18 significant digits, huge exponents.
    """
    if not PyUnicode_CheckExact(s) or PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND:
        return False
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    cdef const unsigned char* p = <const unsigned char*>PyUnicode_DATA(s)
    cdef Py_ssize_t i = 0
    cdef int64_t m = 0
    cdef int digits = 0         # significant digits taken into m
    cdef int frac = 0           # digits after the point
    cdef bint seen_point = False
    cdef bint any_digit = False
    cdef int e = 0
    cdef int e_digits = 0
    cdef bint e_neg = False
    cdef unsigned char c
    while i < n:
        c = p[i]
        if c >= 48 and c <= 57:
            any_digit = True
            if m != 0 or c != 48:
                if digits == 18:
                    return False
                m = m * 10 + (c - 48)
                digits += 1
            if seen_point:
                frac += 1
        elif c == 46 and not seen_point:
            seen_point = True
        else:
            break
        i += 1
    if not any_digit or m == 0:
        return False
    if i < n:
        if p[i] != 69 and p[i] != 101:   # 'E' or 'e'
            return False
        i += 1
        if i < n and (p[i] == 43 or p[i] == 45):
            e_neg = p[i] == 45
            i += 1
        if i == n:
            return False
        while i < n:
            c = p[i]
            if c < 48 or c > 57 or e_digits == 6:
                return False
            e = e * 10 + (c - 48)
            e_digits += 1
            i += 1
        if e_neg:
            e = -e
    mant[0] = m
    exp[0] = e - frac
    return True


cdef inline int64_t step_units(int64_t m, int e, int64_t sm, int se) noexcept:
    """``m * 10**e / (sm * 10**se)`` when it is a whole number in 1..2**63-1, else 0."""
    cdef int d = e - se
    cdef int64_t num, den
    if d >= 0:
        if d > 18 or m > TB_POW10_ROOM[d]:
            return 0
        num = m * TB_POW10[d]
        if sm == 1:             # the usual grid step, 10**k: no division at all
            return num
        if num % sm:
            return 0
        return num // sm
    d = -d
    if d > 18 or sm > TB_POW10_ROOM[d]:
        return 0
    den = sm * TB_POW10[d]
    if m % den:
        return 0
    return m // den


cdef inline bint small_int(object value, int64_t* out) noexcept:
    """True and the value if ``value`` is an exact int in 1..2**63-1."""
    cdef int overflow = 0
    cdef long long v
    if not PyLong_CheckExact(value):
        return False
    v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow or v <= 0:
        return False
    out[0] = v
    return True


cdef inline int64_t raw_units(object value, str what, object error) except 0:
    """A raw tick or lot count: an exact int inline, everything else through ``check_raw``."""
    cdef int64_t v
    if small_int(value, &v):
        return v
    return check_raw(value, what, error)
