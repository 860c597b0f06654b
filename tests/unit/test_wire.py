"""mesos/wire: ids, durations and numbers as Mesos's JSON carries them."""

from mesosspawner.mesos.wire import duration, id_json, number, seconds, value_of


def test_ids_round_trip():
    assert id_json("abc") == {"value": "abc"}
    assert id_json({"value": "abc"}) == {"value": "abc"}
    assert value_of({"value": "abc"}) == "abc"
    assert value_of("abc") == "abc"
    assert value_of(None) is None
    assert value_of({}) is None
    assert value_of({"value": ""}) is None


def test_durations_are_nanoseconds():
    assert duration(2.5) == {"nanoseconds": 2_500_000_000}
    assert duration(0) == {"nanoseconds": 0}
    assert seconds({"nanoseconds": 1_500_000_000}) == 1.5
    assert seconds(duration(30.0)) == 30.0


def test_numbers_read_like_a_person_wrote_them():
    assert number(2.0) == "2"
    assert number(2) == "2"
    assert number(0.5) == "0.5"
    assert number(2048.0) == "2048"
    assert number(1 / 3) == "0.333333"
