"""The realtime publisher: one event loop per process that sends group messages in submission order over
connections it keeps; publishers do not wait, `flush` does; a forked child gets its own; an outage is
logged, not raised, and the publisher goes on. Against the real Redis channel layer."""
import asyncio
import logging
import multiprocessing
import threading

from channels.layers import get_channel_layer

from chatbot.sockets import realtime
from tests.conftest import needs_services

pytestmark = [needs_services]


def receive_all(channel: str, count: int, timeout: float = 10, layer=None) -> list[dict]:
    layer = layer or get_channel_layer()

    async def run():
        return [await asyncio.wait_for(layer.receive(channel), timeout) for _ in range(count)]

    return asyncio.run(run())


def new_channel_in(group: str) -> str:
    layer = get_channel_layer()

    async def run():
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return channel

    return asyncio.run(run())


def test_events_from_several_threads_arrive_in_each_threads_order_over_one_loop():
    channel = new_channel_in("publisher-order")
    before = threading.active_count()

    def publish(tag: str) -> None:
        for i in range(40):  # 80 in all: under the layer's capacity of a channel (100)
            realtime._send_all([("publisher-order", {"type": "chat.typing", "tag": tag, "i": i})])

    threads = [threading.Thread(target=publish, args=(tag,)) for tag in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert realtime.flush()
    got = receive_all(channel, 80)
    for tag in "ab":
        assert [e["i"] for e in got if e["tag"] == tag] == list(range(40))
    publisher = realtime._the_publisher()
    realtime._send("publisher-order", {"type": "chat.typing", "tag": "c", "i": 0})
    assert realtime._the_publisher() is publisher  # one loop (and its connections) for the process
    assert threading.active_count() <= before + 1  # at most the publisher's thread, started once
    assert receive_all(channel, 1)[0]["tag"] == "c"


def _child_publishes(queue) -> None:
    try:
        realtime._send("publisher-fork", {"type": "chat.typing", "from": "child"})
        queue.put((realtime.flush(), realtime._publisher.pid))
    except Exception as exc:  # noqa: BLE001
        queue.put((repr(exc), None))


def test_a_forked_child_publishes_with_a_publisher_of_its_own():
    channel = new_channel_in("publisher-fork")
    realtime._send("publisher-fork", {"type": "chat.typing", "from": "parent"})  # the parent's, started
    assert realtime.flush()
    parent = realtime._publisher
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_publishes, args=(queue,))
    child.start()
    flushed, child_pid = queue.get(timeout=30)
    child.join(10)
    assert flushed is True and child_pid == child.pid != parent.pid
    assert sorted(e["from"] for e in receive_all(channel, 2)) == ["child", "parent"]
    assert realtime._publisher is parent


def test_a_failing_layer_is_logged_not_raised_and_the_publisher_goes_on(settings, caplog):
    from channels.layers import channel_layers

    channel = new_channel_in("publisher-outage")
    listening = get_channel_layer()  # the channel's own layer instance receives it
    good = settings.CHANNEL_LAYERS
    settings.CHANNEL_LAYERS = {"default": {**good["default"], "CONFIG": {**good["default"]["CONFIG"],
                                                                        "hosts": ["redis://127.0.0.1:1/0"]}}}
    channel_layers.backends.clear()
    with caplog.at_level(logging.WARNING, logger="chatbot.sockets.realtime"):
        realtime._send("publisher-outage", {"type": "chat.typing", "n": 1})  # returns at once
        assert realtime.flush()
    assert "could not publish chat.typing to publisher-outage" in caplog.text and "Traceback" not in caplog.text
    settings.CHANNEL_LAYERS = good
    channel_layers.backends.clear()
    realtime._send("publisher-outage", {"type": "chat.typing", "n": 2})
    assert realtime.flush()
    assert receive_all(channel, 1, layer=listening)[0]["n"] == 2
