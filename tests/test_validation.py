"""Unit tests of VOD's input limits (pure logic, no sandbox needed)."""

import json

import pytest

from uploads import validation as v


def test_utf8_len_counts_bytes():
    assert v.utf8_len("abc") == 3 and v.utf8_len("视频") == 6 and v.utf8_len("é") == 2


@pytest.mark.parametrize("text", ["\U0001F600", "a\x00b", "x\x1b"])
def test_illegal_characters(text):
    with pytest.raises(v.InvalidValue):
        v.check_characters(text)


def test_text_limit_is_inclusive():
    assert v.check_text("a" * 128, max_bytes=128)
    with pytest.raises(v.InvalidValue, match="129"):
        v.check_text("a" * 129, max_bytes=128)
    with pytest.raises(v.InvalidValue):
        v.check_text("two\nlines", max_bytes=128)
    assert v.check_text("two\nlines", max_bytes=128, single_line=False)


@pytest.mark.parametrize("name,ext", [("a.MP4", "mp4"), ("a.b.c.mov", "mov"), ("a", ""),
                                      (".hidden", ""), ("trailing.", "")])
def test_extension_of(name, ext):
    assert v.extension_of(name) == ext


def test_every_listed_extension_is_accepted_for_video():
    for ext in v.VIDEO_EXTENSIONS | v.AUDIO_EXTENSIONS:
        assert v.check_video_file_name(f"file.{ext.upper()}")


def test_tags_are_deduplicated_and_limited():
    assert v.normalize_tags([" a ", "b", "a"]) == "a,b"
    assert v.normalize_tags([str(i) for i in range(16)]).count(",") == 15
    with pytest.raises(v.InvalidValue):
        v.normalize_tags([str(i) for i in range(17)])
    with pytest.raises(v.InvalidValue):
        v.normalize_tags([""])


def test_attached_media_extensions_by_business_type():
    assert v.check_attached_media_ext("subtitle", ".VTT") == "vtt"
    with pytest.raises(v.InvalidValue, match="srt"):
        v.check_attached_media_ext("subtitle", "mp4")


def test_user_data_carries_callback_and_extend():
    assert v.build_user_data() == ""
    data = json.loads(v.build_user_data(callback_url="https://example.com/cb", extend={"k": 1}))
    assert data == {"MessageCallback": {"CallbackType": "http",
                                        "CallbackURL": "https://example.com/cb"},
                    "Extend": {"k": 1}}
    with pytest.raises(v.InvalidValue):
        v.check_extend({"k": "x" * 512})
