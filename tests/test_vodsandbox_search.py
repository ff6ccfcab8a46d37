"""vodsandbox's SearchMedia through the real SDK: the Match subset, paging, sorting, the
answer's shape, and the search index trailing creation by `search_lag` seconds.

No test sleeps: the index is caught up by moving the sandbox clock, or by search_lag=0.
None of these tests touch the database.
"""

from __future__ import annotations

import re

import pytest
from alibabacloud_vod20170321 import models as vod

from tests.test_vodsandbox import control, sdk_client, vod_error
from vodsandbox import SandboxConfig
from vodsandbox.__main__ import build_parser, main

HEX32 = re.compile(r"[0-9a-f]{32}")
MARKER = "portal:0d6f1c"


# --- shared helpers --------------------------------------------------------------------


@pytest.fixture
def indexed(sandbox):
    """The sandbox with an index that is never behind: what most tests here search."""
    sandbox.configure(search_lag=0)
    return sandbox


def search(sandbox, **fields) -> vod.SearchMediaResponseBody:
    """One SearchMedia call through the SDK; its parsed body."""
    return sdk_client(sandbox).search_media(vod.SearchMediaRequest(**fields)).body


def found(sandbox, **fields) -> list[str]:
    """The MediaIds one SearchMedia call finds, in the order it lists them."""
    return [item.media_id for item in search(sandbox, **fields).media_list]


def create_image(sandbox, **fields) -> str:
    fields.setdefault("image_type", "default")
    request = vod.CreateUploadImageRequest(**fields)
    return sdk_client(sandbox).create_upload_image(request).body.image_id


def create_attached(sandbox, **fields) -> str:
    fields.setdefault("business_type", "watermark")
    fields.setdefault("media_ext", "png")
    request = vod.CreateUploadAttachedMediaRequest(**fields)
    return sdk_client(sandbox).create_upload_attached_media(request).body.media_id


def create_video(sandbox, **fields) -> str:
    fields.setdefault("title", "Clip")
    fields.setdefault("file_name", "clip.mp4")
    request = vod.CreateUploadVideoRequest(**fields)
    return sdk_client(sandbox).create_upload_video(request).body.video_id


def one_a_minute(sandbox, create, count: int) -> list[str]:
    """`count` media created a minute apart on the sandbox clock, oldest first."""
    ids = []
    for number in range(count):
        ids.append(create(sandbox, title=f"Item {number}"))
        sandbox.clock.advance(60)
    return ids


def refused(sandbox, **fields) -> tuple[str, int, str]:
    error = vod_error(lambda: search(sandbox, **fields))
    return error.code, error.status_code, error.data["Message"]


# --- the index lag ---------------------------------------------------------------------


def test_a_new_image_is_found_only_once_the_index_caught_up(sandbox):
    lag = sandbox.config.search_lag
    assert lag == SandboxConfig().search_lag == 2.0
    image_id = create_image(sandbox, tags=f"{MARKER},cat")
    match = f"Tags = '{MARKER}'"

    early = search(sandbox, search_type="image", match=match)
    assert (early.total, early.media_list) == (0, [])
    sandbox.clock.advance(lag)
    assert found(sandbox, search_type="image", match=match) == [image_id]


def test_the_lag_is_counted_from_creation_on_the_sandbox_clock(sandbox):
    sandbox.configure(search_lag=30)
    image_id = create_image(sandbox, tags=MARKER)
    sandbox.clock.advance(25)
    assert found(sandbox, search_type="image") == []
    sandbox.clock.advance(5)
    assert found(sandbox, search_type="image") == [image_id]


def test_status_changes_and_deletions_show_at_once(sandbox):
    kept, deleted, forgotten = (create_image(sandbox, tags=MARKER) for _ in range(3))
    sandbox.clock.advance(sandbox.config.search_lag)
    assert found(sandbox, search_type="image", match="Status = 'Normal'") == []

    sandbox.set_status(kept, "Normal")
    sdk_client(sandbox).delete_image(vod.DeleteImageRequest(delete_image_type="ImageId",
                                                            image_ids=deleted))
    sandbox.forget(forgotten)

    assert found(sandbox, search_type="image", match="Status = 'Normal'") == [kept]
    assert found(sandbox, search_type="image", match=f"Tags = '{MARKER}'") == [kept]


def test_search_lag_is_configurable_in_process_and_over_http(sandbox):
    sandbox.configure(search_lag=0)
    assert sandbox.config.search_lag == 0.0
    image_id = create_image(sandbox)
    assert found(sandbox, search_type="image") == [image_id]

    status, _, body = control(sandbox, "POST", "/config", {"search_lag": 600})
    assert status == 200 and body["config"]["search_lag"] == 600.0
    assert control(sandbox, "GET", "/state")[2]["config"]["search_lag"] == 600.0
    late = create_image(sandbox)
    sandbox.clock.advance(599)
    assert late not in found(sandbox, search_type="image")

    for bad in (-1, "soon", True):
        assert control(sandbox, "POST", "/config", {"search_lag": bad})[0] == 400
    with pytest.raises(ValueError):
        sandbox.configure(search_lag=-0.5)
    sandbox.reset()
    assert sandbox.config.search_lag == 2.0


def test_search_lag_cli_flag():
    assert build_parser().parse_args(["--search-lag", "0.25"]).search_lag == 0.25
    assert build_parser().parse_args([]).search_lag == 2.0
    assert main(["--search-lag", "-1"]) == 2


# --- what is found ---------------------------------------------------------------------


def test_tags_match_whole_tags_one_or_any_of_several(indexed):
    cat = create_image(indexed, tags=f"{MARKER}, cat")
    dog = create_image(indexed, tags="dog")
    create_image(indexed, tags="category,bird")

    assert found(indexed, search_type="image", match="Tags = 'cat'") == [cat]
    assert sorted(found(indexed, search_type="image", match="Tags in ('dog','cat')")) == \
        sorted([cat, dog])
    assert found(indexed, search_type="image", match="Tags in ('fish')") == []


def test_attached_media_are_found_by_tag_and_business_type(indexed):
    watermark = create_attached(indexed, tags=MARKER, cate_ids="5,9")
    subtitle = create_attached(indexed, tags=MARKER, business_type="subtitle", media_ext="srt")
    create_image(indexed, tags=MARKER)

    everything = found(indexed, search_type="attached", match=f"Tags = '{MARKER}'")
    assert sorted(everything) == sorted([watermark, subtitle])
    assert found(indexed, search_type="attached",
                 match=f"Tags = '{MARKER}' and BusinessType = 'subtitle'") == [subtitle]
    assert found(indexed, search_type="attached", match="CateId = '9'") == [watermark]
    assert found(indexed, search_type="attached", match=f"MediaId = '{subtitle}'") == [subtitle]


def test_video_and_audio_are_told_apart_by_the_file_extension(indexed):
    clip = create_video(indexed, file_name="clip.mp4", tags=MARKER)
    song = create_video(indexed, file_name="song.MP3", tags=MARKER)

    assert found(indexed, match=f"Tags = '{MARKER}'") == [clip]  # SearchType video by default
    assert found(indexed, search_type="audio", match=f"Tags = '{MARKER}'") == [song]
    assert found(indexed, search_type="audio", match=f"VideoId = '{clip}'") == []
    assert found(indexed, search_type="image") == []


def test_title_is_matched_fuzzily_even_within_in(indexed):
    lake = create_image(indexed, title="Summer, at the Lake")
    create_image(indexed, title="Winter")

    assert found(indexed, search_type="image", match="Title = 'the lake'") == [lake]
    assert found(indexed, search_type="image", match="Title = 'Summer, at'") == [lake]
    assert found(indexed, search_type="image", match="Title in ('ake','nothing')") == [lake]
    assert found(indexed, search_type="image", match="Title = 'Lakes'") == []


def test_conditions_are_anded_case_insensitively(indexed):
    cover = create_image(indexed, image_type="cover", tags=MARKER, cate_id=7)
    create_image(indexed, image_type="default", tags=MARKER, cate_id=7)

    match = f"Tags = '{MARKER}' AND ImageType = 'cover' and CateId = '7' And AppId = 'app-1000000'"
    assert found(indexed, search_type="image", match=match) == [cover]
    assert found(indexed, search_type="image", match=f"ImageId in ('{cover}', 'x')") == [cover]


def test_creation_time_ranges_are_inclusive_and_may_be_open(indexed):
    old, middle, new = one_a_minute(indexed, create_image, 3)
    stamp = {media_id: indexed.get_image(media_id)["CreationTime"] for media_id in
             (old, middle, new)}

    def in_range(low, high):
        return found(indexed, search_type="image", sort_by="CreationTime:Asc",
                     match=f"CreationTime = ('{low}','{high}')")

    assert in_range(stamp[old], stamp[middle]) == [old, middle]
    assert in_range(stamp[middle], "") == [middle, new]
    assert in_range("", stamp[middle]) == [old, middle]
    assert found(indexed, search_type="image",
                 match=f"CreationTime = (,'{stamp[old]}')") == [old]
    assert in_range("2000-01-01T00:00:00Z", "2000-01-02T00:00:00Z") == []


def test_sorting_by_creation_time_newest_first_by_default(indexed):
    ids = one_a_minute(indexed, create_image, 3)
    assert found(indexed, search_type="image") == ids[::-1]
    assert found(indexed, search_type="image", sort_by="CreationTime:Desc") == ids[::-1]
    assert found(indexed, search_type="image", sort_by="CreationTime:Asc") == ids


def test_paging_and_total(indexed):
    ids = one_a_minute(indexed, create_image, 5)
    pages = [search(indexed, search_type="image", sort_by="CreationTime:Asc", page_size=2,
                    page_no=page) for page in (1, 2, 3, 4)]

    assert [body.total for body in pages] == [5, 5, 5, 5]
    assert [[item.media_id for item in body.media_list] for body in pages] == \
        [ids[0:2], ids[2:4], ids[4:], []]
    assert len(found(indexed, search_type="image")) == 5  # PageSize 10 by default
    assert found(indexed, search_type="image", page_size=100, page_no=50) == []  # 5,000th


# --- the answer ------------------------------------------------------------------------


def test_an_image_answer_has_the_sdk_models_fields(indexed):
    image_id = create_image(indexed, title="Cover", tags=f"{MARKER},cat", cate_id=3,
                            description="the cover")
    body = search(indexed, search_type="image", match=f"Tags = '{MARKER}'")

    assert set(body.to_map()) == {"RequestId", "Total", "ScrollToken", "MediaList"}
    assert body.total == 1 and HEX32.fullmatch(body.scroll_token)
    item = body.media_list[0]
    known = indexed.get_image(image_id)
    assert (item.media_id, item.media_type, item.creation_time) == (
        image_id, "image", known["CreationTime"])
    assert item.video is None and item.attached_media is None
    image = item.image
    assert (image.image_id, image.title, image.tags, image.cate_id, image.description) == (
        image_id, "Cover", f"{MARKER},cat", 3, "the cover")
    assert (image.status, image.url, image.app_id) == ("Uploading", known["ImageURL"],
                                                      "app-1000000")
    assert image.storage_location == known["StorageLocation"]
    assert image.creation_time == image.modification_time == known["CreationTime"]


def test_attached_video_and_audio_answers(indexed):
    attached_id = create_attached(indexed, title="Logo", cate_ids="4")
    video_id = create_video(indexed, reference_id="order-000042", cate_id=8)
    audio_id = create_video(indexed, file_name="voice.m4a", title="Voice")

    attached = search(indexed, search_type="attached").media_list[0]
    assert (attached.media_type, attached.attached_media.media_id) == ("attached", attached_id)
    assert attached.attached_media.business_type == "watermark"
    assert attached.attached_media.url == indexed.get_attached_media(attached_id)["MediaURL"]
    assert [c.cate_id for c in attached.attached_media.categories] == [4]

    video = search(indexed).media_list[0]
    assert (video.media_type, video.video.video_id, video.video.reference_id) == (
        "video", video_id, "order-000042")
    assert (video.video.cate_id, video.video.status, video.video.title) == (8, "Uploading",
                                                                            "Clip")

    audio = search(indexed, search_type="audio").media_list[0]
    assert (audio.media_type, audio.media_id, audio.audio.audio_id, audio.audio.title) == (
        "audio", audio_id, audio_id, "Voice")
    assert audio.video is None


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("fields,parameter", [
    ({"search_type": "movie"}, "SearchType"),
    ({"page_size": 0}, "PageSize"),
    ({"page_size": 101}, "PageSize"),
    ({"page_no": 0}, "PageNo"),
    ({"page_no": 51, "page_size": 100}, "PageNo"),   # past the first 5,000 results
    ({"sort_by": "Title:Asc"}, "SortBy"),
    ({"match": "Title = VOD"}, "Match"),                           # unquoted value
    ({"match": "Title = 'unterminated"}, "Match"),
    ({"match": "Title = 'a' or Tags = 'b'"}, "Match"),
    ({"match": "Title like 'a'"}, "Match"),
    ({"match": "Title == 'a'"}, "Match"),
    ({"match": "Tags in ()"}, "Match"),
    ({"match": "Tags = 'a' and"}, "Match"),
    ({"match": "Duration = ('1','2')"}, "Match"),                  # unknown field
    ({"match": "Nonsense = 'x'"}, "Match"),                        # unknown field
    ({"match": "ImageType = 'cover'"}, "Match"),                   # not a video field
    ({"match": "Title = ('a','b')"}, "Match"),                     # a range on Title
    ({"match": "CreationTime = '2024-01-01T00:00:00Z'"}, "Match"),
    ({"match": "CreationTime = ('yesterday','')"}, "Match"),
])
def test_bad_parameters_are_invalid_parameter_naming_them(indexed, fields, parameter):
    code, status, message = refused(indexed, **fields)
    assert (code, status) == ("InvalidParameter", 400)
    assert f'"{parameter}"' in message


def test_unknown_field_is_named_in_the_message(indexed):
    _, _, message = refused(indexed, search_type="image", match="Colour = 'red'")
    assert "Colour" in message and "ImageType" in message


def test_fields_and_scroll_token_are_accepted(indexed):
    image_id = create_image(indexed)
    assert found(indexed, search_type="image", fields="Title,URL",
                 scroll_token="0" * 32) == [image_id]
    # Full traversal with a ScrollToken (audio and video) is not bound to 5,000 results.
    assert found(indexed, page_no=51, page_size=100, scroll_token="0" * 32) == []
