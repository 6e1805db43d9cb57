from dhtviewer.dht.op_ids import OpIds


def test_ids_increase_from_first_and_next_id_does_not_use_one() -> None:
    ids = OpIds(7)
    assert ids.next_id == 7
    assert ids.next_id == 7  # asking is free
    assert [next(ids) for _ in range(3)] == [7, 8, 9]
    assert ids.next_id == 10


def test_a_source_continued_from_another_never_repeats_its_ids() -> None:
    first = OpIds()
    used = {next(first) for _ in range(5)}
    second = OpIds(first.next_id)
    assert next(second) not in used
