"""Small, obviously correct models the tests compare the real implementations with.

``models.book``: a book as plain dicts and lists (``Model``), for the book-vs-model tests;
``models.engine``: a reference matching engine (``RefEngine``) and the venue helpers the
engine tests share.
"""
