"""``PriceTree``: the AVL sorted map, on both backends, plus seeded stress streams."""

from __future__ import annotations

import math
import random

import pytest

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def test_empty(backend):
    tree = backend.PriceTree()
    assert len(tree) == 0
    assert not tree
    assert tree.height == 0
    assert tree.min_item() is None
    assert tree.max_item() is None
    assert list(tree.items()) == []
    assert list(tree.items(reverse=True)) == []
    assert 1 not in tree
    assert tree.get(1) is None
    assert tree.get(1, "dflt") == "dflt"
    tree._check()


def test_single(backend):
    tree = backend.PriceTree()
    tree.insert(5, "five")
    assert len(tree) == 1
    assert tree
    assert tree.height == 1
    assert tree.min_item() == (5, "five")
    assert tree.max_item() == (5, "five")
    assert 5 in tree
    assert tree.get(5) == "five"
    tree._check()


def test_insert_get_contains_items(backend):
    tree = backend.PriceTree()
    for key in (105, 101, 103, 99, 110):
        tree.insert(key, str(key))
    assert len(tree) == 5
    assert list(tree.items()) == [(99, "99"), (101, "101"), (103, "103"), (105, "105"), (110, "110")]
    assert list(tree.items(reverse=True)) == [(110, "110"), (105, "105"), (103, "103"), (101, "101"), (99, "99")]
    assert list(tree.items(True)) == list(tree.items(reverse=True))
    assert tree.min_item() == (99, "99")
    assert tree.max_item() == (110, "110")
    assert all(isinstance(item, tuple) for item in tree.items())
    assert 103 in tree and 104 not in tree
    assert tree.get(104) is None
    assert tree.get(103) == "103"
    assert list(tree.keys()) == [99, 101, 103, 105, 110]
    assert list(tree.keys(reverse=True)) == [110, 105, 103, 101, 99]
    assert list(tree.values()) == ["99", "101", "103", "105", "110"]
    assert list(tree.values(reverse=True)) == ["110", "105", "103", "101", "99"]
    assert list(tree) == [99, 101, 103, 105, 110]
    assert "103" in repr(tree)
    tree._check()


def test_insert_replaces_existing_value(backend):
    tree = backend.PriceTree()
    tree.insert(1, "a")
    tree.insert(2, "b")
    tree.insert(1, "c")
    assert len(tree) == 2
    assert tree.get(1) == "c"
    assert tree.min_item() == (1, "c")
    tree.insert(2, None)
    assert tree.max_item() == (2, None)
    assert 2 in tree
    tree._check()


def test_values_are_arbitrary_objects(backend):
    tree = backend.PriceTree()
    value = object()
    tree.insert(7, value)
    assert tree.get(7) is value
    assert tree.min_item()[1] is value


def test_remove(backend):
    tree = backend.PriceTree()
    for key in range(10):
        tree.insert(key, key * key)
    tree.remove(0)
    tree.remove(9)
    tree.remove(5)
    assert list(tree.keys()) == [1, 2, 3, 4, 6, 7, 8]
    assert tree.min_item() == (1, 1)
    assert tree.max_item() == (8, 64)
    assert 5 not in tree
    tree._check()
    with pytest.raises(KeyError):
        tree.remove(5)
    with pytest.raises(KeyError):
        tree.remove(100)
    assert len(tree) == 7
    for key in list(tree.keys()):
        tree.remove(key)
        tree._check()
    assert len(tree) == 0 and tree.height == 0
    assert tree.min_item() is None and tree.max_item() is None
    with pytest.raises(KeyError):
        tree.remove(1)


def test_remove_missing_key_error_carries_key(backend):
    tree = backend.PriceTree()
    with pytest.raises(KeyError) as info:
        tree.remove(42)
    assert info.value.args == (42,)


def test_height_values(backend):
    tree = backend.PriceTree()
    assert tree.height == 0
    tree.insert(2, None)
    assert tree.height == 1
    tree.insert(1, None)
    assert tree.height == 2
    tree.insert(3, None)
    assert tree.height == 2
    tree.remove(1)
    tree.remove(3)
    assert tree.height == 1
    tree.remove(2)
    assert tree.height == 0


@pytest.mark.parametrize("order", ["ascending", "descending", "zigzag"])
def test_stays_balanced(backend, order):
    tree = backend.PriceTree()
    n = 2**12 - 1
    keys = list(range(n))
    if order == "descending":
        keys.reverse()
    elif order == "zigzag":
        keys = [keys[i // 2] if i % 2 == 0 else keys[n - 1 - i // 2] for i in range(n)]
    for key in keys:
        tree.insert(key, key)
    # AVL bound: h < 1.4405 log2(n + 2) - 0.3277
    assert tree.height <= 1.4405 * math.log2(len(tree) + 2) - 0.3277
    assert tree.height >= math.ceil(math.log2(len(tree) + 1))
    tree._check()
    assert [k for k, _ in tree.items()] == sorted(keys)


def test_extreme_keys(backend):
    tree = backend.PriceTree()
    for key in (0, -1, INT64_MIN, INT64_MAX, 1):
        tree.insert(key, key)
    assert tree.min_item() == (INT64_MIN, INT64_MIN)
    assert tree.max_item() == (INT64_MAX, INT64_MAX)
    assert list(tree.keys()) == [INT64_MIN, -1, 0, 1, INT64_MAX]
    tree.remove(INT64_MAX)
    assert tree.max_item() == (1, 1)
    tree._check()


@pytest.mark.parametrize(
    "key",
    [None, 1.0, 1.5, "1", b"1", (1,), [1], True, False, object()],
    ids=lambda key: "object()" if type(key) is object else repr(key),
)
def test_non_int_keys_rejected(backend, key):
    tree = backend.PriceTree()
    tree.insert(1, "one")
    with pytest.raises(TypeError):
        tree.insert(key, "x")
    with pytest.raises(TypeError):
        tree.get(key)
    with pytest.raises(TypeError):
        tree.remove(key)
    assert key not in tree
    assert list(tree.items()) == [(1, "one")]
    tree._check()


@pytest.mark.parametrize("key", [INT64_MAX + 1, INT64_MIN - 1, 2**100, -(2**100)], ids=str)
def test_keys_beyond_64_bits_rejected(backend, key):
    tree = backend.PriceTree()
    tree.insert(1, "one")
    with pytest.raises(OverflowError):
        tree.insert(key, "x")
    with pytest.raises(OverflowError):
        tree.remove(key)
    with pytest.raises(OverflowError):
        tree.get(key)
    assert key not in tree
    assert list(tree.items()) == [(1, "one")]
    tree._check()


def test_int_subclass_keys_become_ints(backend):
    class Ticks(int):
        pass

    tree = backend.PriceTree()
    tree.insert(Ticks(5), "five")
    assert Ticks(5) in tree
    assert tree.get(Ticks(5)) == "five"
    ((key, value),) = list(tree.items())
    assert key == 5 and type(key) is int and value == "five"
    tree.remove(Ticks(5))
    assert len(tree) == 0


def test_items_reverse_argument_is_truthy(backend):
    tree = backend.PriceTree()
    for key in (3, 1, 2):
        tree.insert(key, None)
    assert [k for k, _ in tree.items(reverse=1)] == [3, 2, 1]
    assert [k for k, _ in tree.items(reverse=0)] == [1, 2, 3]


def _stress(tree, rng: random.Random, steps: int, key_space: int, check_every: int) -> None:
    ref: dict[int, int] = {}
    for step in range(steps):
        key = rng.randrange(-key_space, key_space)
        action = rng.random()
        if action < 0.55:
            value = rng.randrange(1 << 30)
            tree.insert(key, value)
            ref[key] = value
        elif action < 0.95:
            if key in ref:
                tree.remove(key)
                del ref[key]
            else:
                with pytest.raises(KeyError):
                    tree.remove(key)
        else:
            assert tree.get(key, "missing") == ref.get(key, "missing")
            assert (key in tree) == (key in ref)
        if step % check_every == 0:
            tree._check()
            expected = sorted(ref.items())
            assert list(tree.items()) == expected
            assert list(tree.items(reverse=True)) == expected[::-1]
            assert len(tree) == len(ref)
            assert tree.min_item() == (expected[0] if expected else None)
            assert tree.max_item() == (expected[-1] if expected else None)
            assert tree.height <= 1.4405 * math.log2(len(ref) + 2)
    tree._check()
    assert list(tree.items()) == sorted(ref.items())


@pytest.mark.parametrize("seed", range(6))
def test_stress_against_sorted_dict(backend, seed):
    rng = random.Random(seed)
    key_space = [20, 200, 2000, 50, 5000, 1 << 62][seed]
    _stress(backend.PriceTree(), rng, steps=4000, key_space=key_space, check_every=97)


def test_stress_grow_then_drain(backend):
    rng = random.Random(1234)
    tree = backend.PriceTree()
    keys = rng.sample(range(-(10**9), 10**9), 5000)
    for i, key in enumerate(keys):
        tree.insert(key, i)
    tree._check()
    assert [k for k, _ in tree.items()] == sorted(keys)
    rng.shuffle(keys)
    remaining = set(keys)
    for i, key in enumerate(keys):
        tree.remove(key)
        remaining.discard(key)
        if i % 250 == 0:
            tree._check()
            assert [k for k, _ in tree.items()] == sorted(remaining)
    assert len(tree) == 0 and tree.height == 0
    tree._check()


def test_trees_are_independent(backend):
    a, b = backend.PriceTree(), backend.PriceTree()
    a.insert(1, "a")
    assert len(b) == 0 and 1 not in b
