import tracemalloc

import orjson

from headrace.codec.json_bytes import dumps_kept


def test_kept_json_is_the_same_bytes_held_in_a_buffer_of_their_size() -> None:
    event = {"transaction_id": 7, "account_number": "x" * 200, "amount": 12.5}
    assert dumps_kept(event) == orjson.dumps(event)
    tracemalloc.start()
    try:
        kept = [dumps_kept(event) for _ in range(1_000)]
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Each value and its list slot; orjson's own buffers would be >= 4 KiB each.
    assert held < 1_000 * (len(kept[0]) + 100)
