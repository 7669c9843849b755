from chatserver.queue.model import WaitingQueue


def test_priority_then_arrival_order() -> None:
    q = WaitingQueue()
    q.add("a", 10.0)
    q.add("b", 5.0)
    q.add("c", 20.0, urgent=True)
    q.add("d", 5.0)  # same time as b: insertion order breaks the tie
    assert list(q.iter_lane()) == ["c", "b", "d", "a"]
    assert [q.position(x) for x in "cbda"] == [1, 2, 3, 4]


def test_remove_shifts_positions_and_unknown_is_zero() -> None:
    q = WaitingQueue()
    for i, name in enumerate("abc"):
        q.add(name, float(i))
    assert q.remove("a") is True
    assert q.remove("a") is False
    assert q.position("b") == 1 and q.position("c") == 2
    assert q.position("zzz") == 0
    assert len(q) == 2 and "a" not in q


def test_lanes_are_separate() -> None:
    q = WaitingQueue()
    q.add("a", 1.0)
    q.add("p", 0.5, lane="professional")
    assert q.position("a") == 1 and q.position("p") == 1
    assert q.lane_length() == 1 and q.lane_length("professional") == 1
    assert sorted(q.iter_all()) == [("a", 1), ("p", 1)]


def test_double_add_refused() -> None:
    q = WaitingQueue()
    q.add("a", 1.0)
    try:
        q.add("a", 2.0)
    except ValueError:
        pass
    else:
        raise AssertionError("second add must fail")
    assert q.position("a") == 1
