"""The recording format: header and frames round trip, deterministic bytes, clear errors."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbot.facts import recording_file
from mmbot.facts.recording import (
    RecordingError,
    RecordingHeader,
    RecordingWriter,
    count_frames,
    header_to_json,
    iter_frames,
    read_header,
)
from mmbot.model import MarketInfo

HEADER = RecordingHeader(
    start_ns=1_786_604_040_000_000_000,
    markets=(
        MarketInfo(
            market="0xabc",
            tokens=("111", "222"),
            outcomes=("Up", "Down"),
            tick=10_000,
            min_size=5_000_000,
            end_ns=1_786_604_400_000_000_000,
            fee_rate=72_000,
            slug="btc-updown-5m-1786604100",
            question="Bitcoin Up or Down",
        ),
        MarketInfo(market="0xdef", tokens=("333", "444"), tick=1_000, fee_rate=40_000, neg_risk=True),
    ),
    source="test",
    seed=7,
)
FRAMES = [
    (100, "market", '[{"event_type":"book","asset_id":"111"}]'),
    (100, "underlying", '{"value": 65000.5}'),
    (250, "market", 'text with "quotes", a \\ backslash,\na newline and ünïcödé'),
    (251, "user", "PONG"),
]


def write(path, frames=FRAMES, header=HEADER):
    with RecordingWriter(path) as writer:
        writer.write_header(header)
        for frame in frames:
            writer.write_frame(*frame)


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_header_and_frames_round_trip(tmp_path, name):
    path = tmp_path / name
    write(path)
    assert read_header(path) == HEADER
    assert list(iter_frames(path)) == FRAMES
    assert count_frames(path) == len(FRAMES)


def test_gz_suffix_means_gzip_and_the_header_is_the_documented_json(tmp_path):
    write(tmp_path / "rec.jsonl.gz")
    with gzip.open(tmp_path / "rec.jsonl.gz", "rt", encoding="utf-8") as f:
        header = json.loads(f.readline())
        first = json.loads(f.readline())
    assert header["format"] == "mmbot-recording" and header["version"] == 1 and header["seed"] == 7
    assert header["markets"][0] | {"question": None} == {
        "market": "0xabc", "tokens": ["111", "222"], "outcomes": ["Up", "Down"], "tick": "0.01",
        "min_size": "5", "end_ns": 1_786_604_400_000_000_000, "fee_rate": "0.072", "fee_exponent": 1,
        "neg_risk": False, "slug": "btc-updown-5m-1786604100", "question": None,
    }
    assert first == {"t": 100, "ch": "market", "frame": FRAMES[0][2]}


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_identical_input_gives_identical_bytes_wherever_it_is_written(tmp_path, name):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a" / name)
    write(tmp_path / "b" / name)
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_writer_refuses_time_going_backwards_and_frames_before_the_header(tmp_path):
    with RecordingWriter(tmp_path / "rec.jsonl") as writer:
        with pytest.raises(ValueError, match="header"):
            writer.write_frame(1, "market", "{}")
        writer.write_header(HEADER)
        writer.write_frame(10, "market", "{}")
        writer.write_frame(10, "market", "{}")  # the same instant is fine
        with pytest.raises(ValueError, match="must not decrease"):
            writer.write_frame(9, "market", "{}")
        with pytest.raises(ValueError, match="channel"):
            writer.write_frame(11, "telepathy", "{}")


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_a_corrupt_frame_line_is_named_by_its_number(tmp_path):
    path = tmp_path / "rec.jsonl"
    write(path)
    lines = _lines(path)
    lines[3] = '{"t": 260, "ch": "market", "frame": '  # cut short
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frames = iter_frames(path)
    assert next(frames) == FRAMES[0]
    assert next(frames) == FRAMES[1]
    with pytest.raises(RecordingError, match=r"rec\.jsonl: line 4: not JSON"):
        next(frames)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"t": 5, "ch": "market", "frame": "x"}', "line 3: time goes backwards"),
        ('{"t": "260", "ch": "market", "frame": "x"}', "line 3: .*'t' has the wrong type"),
        ('{"t": 260, "ch": "market"}', "line 3: .*missing 'frame'"),
        ('{"t": 260, "ch": "radio", "frame": "x"}', "line 3: unknown channel 'radio'"),
        ("[1, 2]", "line 3: expected an object"),
    ],
)
def test_malformed_frame_lines_raise_a_one_line_error(tmp_path, line, message):
    path = tmp_path / "rec.jsonl"
    write(path)
    lines = _lines(path)
    lines[2] = line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(RecordingError, match=message) as info:
        list(iter_frames(path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("header_line", "message"),
    [
        ("", "empty file"),
        ("not json", "line 1: header is not JSON"),
        ('{"format": "something-else"}', "not an mmbot-recording file"),
        ('{"format": "mmbot-recording", "version": 2}', "unsupported recording version 2"),
        (
            '{"format": "mmbot-recording", "version": 1, "start_ns": 0, "markets": [{"market": "0x1", "tokens": ["a"]}]}',
            "market 0: 'tokens': expected a list of two strings",
        ),
        (
            '{"format": "mmbot-recording", "version": 1, "start_ns": 0, '
            '"markets": [{"market": "0x1", "tokens": ["a", "b"], "tick": "0.0000001"}]}',
            "market 0: 'tick': more than six decimal places",
        ),
    ],
)
def test_a_bad_header_is_a_clear_error(tmp_path, header_line, message):
    path = tmp_path / "rec.jsonl"
    path.write_text(header_line + ("\n" if header_line else ""), encoding="utf-8")
    with pytest.raises(RecordingError, match=message):
        read_header(path)


def test_a_truncated_gzip_file_is_a_recording_error_not_a_crash(tmp_path):
    path = tmp_path / "rec.jsonl.gz"
    write(path, frames=[(i, "market", f'{{"n": {i}, "pad": "{"x" * 200}"}}') for i in range(2_000)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match="truncated or corrupt"):
        list(iter_frames(path))
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(RecordingError, match="cannot read"):
        read_header(missing)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frames=st.lists(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40), max_size=30),
    blanks=st.sets(st.integers(min_value=0, max_value=30), max_size=3),
    chunk=st.integers(min_value=1, max_value=300),
    gz=st.booleans(),
)
def test_frames_read_in_chunks_are_the_lines_in_order_with_their_numbers(
    tmp_path, monkeypatch, frames, blanks, chunk, gz
):
    # Blocks of any size, a line cut anywhere by a block's end, blank lines and a last line
    # without its end: the same frames, in order, as reading line by line; and a bad line's
    # number is the same however the blocks fall.
    monkeypatch.setattr(recording_file, "_CHUNK_BYTES", chunk)
    path = tmp_path / ("rec.jsonl.gz" if gz else "rec.jsonl")
    lines = [header_to_json(HEADER)] + [
        json.dumps({"t": i, "ch": "market", "frame": text}) for i, text in enumerate(frames)
    ]
    for at in sorted(blanks, reverse=True):
        lines.insert(min(at + 1, len(lines)), "")
    raw = "\n".join(lines).encode("utf-8")  # the last line has no end
    path.write_bytes(gzip.compress(raw) if gz else raw)
    assert list(iter_frames(path)) == [(i, "market", text) for i, text in enumerate(frames)]
    assert count_frames(path) == len(frames)
    if frames:
        bad = len(lines)  # the last line, wherever its block began
        lines[-1] = "not json"
        raw = "\n".join(lines).encode("utf-8")
        path.write_bytes(gzip.compress(raw) if gz else raw)
        with pytest.raises(RecordingError, match=rf"line {bad}: not JSON"):
            list(iter_frames(path))
