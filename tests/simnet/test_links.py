"""Links: the messages between serving processes and the coordinator cross a socket pair
intact, a full link refuses instead of blocking, and a closed end reads as gone."""

from __future__ import annotations

from dhtviewer.simnet.links import Answer, Ask, Heard, MemberJoined, MemberLeft, Reply
from dhtviewer.simnet.questions import Question
from dhtviewer.simnet.server import link_pair, read_messages, send_message


def test_every_message_crosses_a_link_intact() -> None:
    a, b = link_pair()
    try:
        messages = [
            Heard(("127.0.0.5", 6881), 0x7F000005, bytes(20), b"LT\x02\x00", 3, 12.5),
            Reply(b"d1:rd2:id20:" + bytes(20) + b"e1:t2:aa1:y1:re", ("127.0.0.5", 6881),
                  0x7F400001, 4000, 12.75),
            MemberJoined(("127.0.0.5", 6881), 0x7F000005, bytes(20), None, 12.0),
            MemberLeft(("127.0.0.5", 6881)),
            Ask(7, Question.SWARM, (bytes(20),)),
            Answer(7, {"peers": ["127.0.0.9:1"], "holders": [3, 4]}),
        ]
        for m in messages:
            assert send_message(a, m)
        got, gone = read_messages(b)
        assert got == messages and not gone
    finally:
        a.close()
        b.close()


def test_a_full_link_refuses_and_a_closed_one_is_gone() -> None:
    a, b = link_pair()
    big = Reply(b"x" * 60_000, ("127.0.0.5", 1), 0, 0, 0.0)
    sent = 0
    while send_message(a, big):  # never blocks: False once the buffers are full
        sent += 1
        assert sent < 10_000
    got, gone = read_messages(b, limit=sent + 10)
    assert len(got) == sent and not gone
    a.close()
    got, gone = read_messages(b)
    assert got == [] and gone
    b.close()
