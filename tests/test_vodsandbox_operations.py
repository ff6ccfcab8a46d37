"""vodsandbox's VOD operations through the real SDK: shapes, credentials, validation, errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_vod20170321 import models as vod

from tests.test_vodsandbox import b64json, sdk_client, v3_call, vod_error

HEX32 = re.compile(r"[0-9a-f]{32}")


def video(**fields):
    fields.setdefault("title", "Clip")
    fields.setdefault("file_name", "clip.mp4")
    return vod.CreateUploadVideoRequest(**fields)


def refused(sandbox, call) -> tuple[str, int, str]:
    error = vod_error(lambda: call(sdk_client(sandbox)))
    return error.code, error.status_code, error.data["Message"]


def parse_utc(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# --- CreateUploadVideo / RefreshUploadVideo --------------------------------------------


def test_create_upload_video_answers_with_vods_shape(sandbox):
    body = sdk_client(sandbox).create_upload_video(video(
        reference_id="ref-000001", tags="a, b", file_size=1024, cate_id=7)).body

    assert set(body.to_map()) == {"RequestId", "VideoId", "UploadAddress", "UploadAuth"}
    assert HEX32.fullmatch(body.video_id)
    address, auth = b64json(body.upload_address), b64json(body.upload_auth)
    assert address["Endpoint"] == sandbox.base_url
    assert re.fullmatch(r"outin-[0-9a-f]{32}", address["Bucket"])
    assert re.fullmatch(r"sv/[0-9a-f]+/[0-9a-f]+\.mp4", address["FileName"])
    assert auth["AccessKeyId"].startswith("STS.") and len(auth["SecurityToken"]) > 200
    assert auth["Expiration"] == "3600"
    lifetime = parse_utc(auth["ExpireUTCTime"]) - datetime.now(UTC)
    assert timedelta(seconds=2990) < lifetime <= timedelta(seconds=3000)

    known = sandbox.get_video(body.video_id)
    assert known["Status"] == "Uploading" and known["ReferenceId"] == "ref-000001"
    assert known["Params"]["FileSize"] == "1024" and known["Tags"] == "a,b"
    assert known["UploadAddress"] == address
    assert known["Credential"]["AccessKeyId"] == auth["AccessKeyId"]
    assert known["Credential"]["SecurityToken"] == auth["SecurityToken"]
    assert known["CredentialExpiresAt"] == parse_utc(auth["ExpireUTCTime"])
    assert known["RefreshCount"] == 0


def test_each_create_gives_a_new_address_and_credential(sandbox):
    client = sdk_client(sandbox)
    one, two = (client.create_upload_video(video()).body for _ in range(2))
    assert one.video_id != two.video_id
    assert b64json(one.upload_address)["FileName"] != b64json(two.upload_address)["FileName"]
    assert b64json(one.upload_address)["Bucket"] == b64json(two.upload_address)["Bucket"]
    assert b64json(one.upload_auth)["AccessKeyId"] != b64json(two.upload_auth)["AccessKeyId"]


def test_refresh_keeps_the_address_and_renews_the_credential(sandbox):
    client = sdk_client(sandbox)
    created = client.create_upload_video(video(reference_id="ref-000002")).body
    sandbox.clock.advance(120)

    by_id = client.refresh_upload_video(
        vod.RefreshUploadVideoRequest(video_id=created.video_id)).body
    by_reference = client.refresh_upload_video(
        vod.RefreshUploadVideoRequest(reference_id="ref-000002")).body

    assert by_id.video_id == by_reference.video_id == created.video_id
    assert by_id.upload_address == created.upload_address == by_reference.upload_address
    old, new = b64json(created.upload_auth), b64json(by_id.upload_auth)
    assert new["AccessKeyId"] != old["AccessKeyId"]
    assert new["SecurityToken"] != old["SecurityToken"]
    assert parse_utc(new["ExpireUTCTime"]) - parse_utc(old["ExpireUTCTime"]) >= \
        timedelta(seconds=119)
    known = sandbox.get_video(created.video_id)
    assert known["RefreshCount"] == 2 and known["CredentialsIssued"] == 3
    assert known["Credential"]["AccessKeyId"] == b64json(by_reference.upload_auth)["AccessKeyId"]


def test_credential_ttl_is_configurable(sandbox):
    sandbox.configure(credential_ttl=60)
    auth = b64json(sdk_client(sandbox).create_upload_video(video()).body.upload_auth)
    assert parse_utc(auth["ExpireUTCTime"]) - datetime.now(UTC) <= timedelta(seconds=60)


@pytest.mark.parametrize("request_", [vod.RefreshUploadVideoRequest(video_id="e" * 32),
                                      vod.RefreshUploadVideoRequest(reference_id="nobody-1")])
def test_refresh_of_an_unknown_video_is_404(sandbox, request_):
    code, status, _ = refused(sandbox, lambda c: c.refresh_upload_video(request_))
    assert (code, status) == ("InvalidVideo.NotFound", 404)


def test_a_reference_id_makes_one_video_only(sandbox):
    client = sdk_client(sandbox)
    first = client.create_upload_video(video(reference_id="order-42")).body.video_id

    error = vod_error(lambda: client.create_upload_video(video(reference_id="order-42")))

    assert (error.code, error.status_code) == ("InvalidParameter.ReferenceId", 400)
    assert sandbox.count_videos() == 1
    found = client.get_video_info(vod.GetVideoInfoRequest(reference_id="order-42")).body
    assert found.video.video_id == first and found.video.reference_id == "order-42"


# --- validation of CreateUploadVideo ---------------------------------------------------


@pytest.mark.parametrize("fields,code", [
    ({"title": "標" * 43}, "LengthExceededMax"),        # 43 CJK characters = 129 bytes
    ({"title": "x" * 129}, "LengthExceededMax"),
    ({"description": "é" * 513}, "LengthExceededMax"),  # 1,026 bytes
    ({"title": "Party 🎉"}, "IllegalCharacters"),
    ({"title": "Tab\there"}, "IllegalCharacters"),
    ({"title": "bell\x07"}, "IllegalCharacters"),
    ({"description": "Nice 😀"}, "IllegalCharacters"),
    ({"tags": "ok,🎉"}, "IllegalCharacters"),
    ({"file_name": "🎬.mp4"}, "IllegalCharacters"),
    ({"tags": ",".join(f"t{i}" for i in range(17))}, "TagsExceededMax"),
    ({"tags": "a," + "x" * 33}, "LengthExceededMax"),
    ({"tags": "標" * 11}, "LengthExceededMax"),          # 33 bytes
    ({"file_name": "notes.txt"}, "InvalidFileName.Extension"),
    ({"file_name": "movie"}, "InvalidFileName.Extension"),
    ({"file_name": ".mp4"}, "InvalidFileName.Extension"),
    ({"reference_id": "short"}, "InvalidParameter"),
    ({"reference_id": "has space!"}, "InvalidParameter"),
    ({"reference_id": "x" * 65}, "InvalidParameter"),
    ({"user_data": "not json"}, "InvalidParameter"),
    ({"user_data": "[1, 2]"}, "InvalidParameter"),
    ({"user_data": '{"Extend": {"k": "%s"}}' % ("x" * 510)}, "InvalidParameter"),
    ({"user_data": '{"Extend": "%s"}' % ("x" * 1030)}, "InvalidParameter"),
])
def test_create_upload_video_validation(sandbox, fields, code):
    result = refused(sandbox, lambda c: c.create_upload_video(video(**fields)))
    assert result[:2] == (code, 400)
    assert sandbox.count_videos() == 0


@pytest.mark.parametrize("fields", [
    {"title": "標" * 42},                                  # 126 bytes
    {"title": "x" * 128, "description": "é" * 512},
    {"description": "two\nlines\tand a tab"},
    {"tags": ",".join(f"t{i}" for i in range(16))},
    {"tags": "x" * 32 + ",標標標標標標標標標標"},              # 32 and 30 bytes
    {"file_name": "CLIP.MP4"}, {"file_name": r"D:\videos\take 1.mkv"},
    {"file_name": "song.flac"},
    {"reference_id": "abc_DEF-12"}, {"reference_id": "x" * 64},
    {"user_data": '{"MessageCallback":{"CallbackURL":"http://127.0.0.1/cb"},"Extend":{"a":1}}'},
    {"workflow_id": "wf-1", "template_group_id": "tg-unknown"},
])
def test_create_upload_video_accepts_what_vod_accepts(sandbox, fields):
    assert sdk_client(sandbox).create_upload_video(video(**fields)).body.video_id


@pytest.mark.parametrize("fields,name", [({"title": None}, "Title"), ({"title": ""}, "Title"),
                                         ({"file_name": None}, "FileName")])
def test_missing_parameters_are_named(sandbox, fields, name):
    code, status, message = refused(sandbox, lambda c: c.create_upload_video(video(**fields)))
    assert (code, status) == ("MissingParameter", 400) and f'"{name}"' in message


@pytest.mark.parametrize("name", ["FileSize", "CateId"])
def test_numbers_must_be_numbers(sandbox, name):
    status, _, body = v3_call(sandbox, "CreateUploadVideo",
                              {"Title": "Clip", "FileName": "clip.mp4", name: "12abc"})
    assert (status, body["Code"]) == (400, "InvalidParameter") and name in body["Message"]


def test_template_groups_and_storage_locations_known_to_vod(sandbox):
    client = sdk_client(sandbox)
    assert client.create_upload_video(video(template_group_id="any", storage_location="any"))
    sandbox.configure(template_group_ids={"tg-1"}, storage_locations={"outin-a.oss"})

    assert client.create_upload_video(video(template_group_id="tg-1",
                                            storage_location="outin-a.oss"))
    for fields, code in [({"template_group_id": "tg-2"}, "InvalidTemplateGroupId.NotFound"),
                         ({"storage_location": "outin-b.oss"}, "InvalidStorage.NotFound")]:
        error = vod_error(lambda f=fields: client.create_upload_video(video(**f)))
        assert (error.code, error.status_code) == (code, 404)


# --- images ----------------------------------------------------------------------------


def test_create_upload_image_answers_with_vods_shape(sandbox):
    body = sdk_client(sandbox).create_upload_image(vod.CreateUploadImageRequest(
        image_type="cover", image_ext="JPG", title="Poster", original_file_name="p.jpeg")).body

    assert set(body.to_map()) == {"RequestId", "ImageId", "ImageURL", "FileURL",
                                  "UploadAddress", "UploadAuth"}
    address = b64json(body.upload_address)
    assert re.fullmatch(r"image/cover/[0-9a-f]{32}\.jpg", address["FileName"])
    assert body.image_url == body.file_url == \
        f"{sandbox.base_url}/{address['Bucket']}/{address['FileName']}"
    assert b64json(body.upload_auth)["AccessKeyId"].startswith("STS.")
    known = sandbox.get_image(body.image_id)
    assert known["ImageType"] == "cover" and known["ImageExt"] == "jpg"
    assert known["Status"] == "Uploading" and sandbox.get_video(body.image_id) is None


@pytest.mark.parametrize("ext", ["heic", "webp"])
def test_heic_and_webp_images_are_accepted(sandbox, ext):
    body = sdk_client(sandbox).create_upload_image(vod.CreateUploadImageRequest(
        image_type="default", image_ext=ext, original_file_name="IMG_0001")).body

    assert b64json(body.upload_address)["FileName"].endswith(f".{ext}")
    assert sandbox.get_image(body.image_id)["ImageExt"] == ext


def test_image_original_file_name_keeps_its_checks_without_extension(sandbox):
    error = vod_error(lambda: sdk_client(sandbox).create_upload_image(
        vod.CreateUploadImageRequest(image_type="default", original_file_name="a\x00b")))
    assert error.code == "IllegalCharacters"


def test_image_ext_defaults_to_png(sandbox):
    body = sdk_client(sandbox).create_upload_image(
        vod.CreateUploadImageRequest(image_type="default")).body
    assert b64json(body.upload_address)["FileName"].endswith(".png")


@pytest.mark.parametrize("fields,code", [
    ({}, "MissingParameter"),
    ({"image_type": "banner"}, "InvalidParameter"),
    ({"image_type": "default", "image_ext": "bmp"}, "InvalidParameter"),
    ({"image_type": "default", "title": "é" * 65}, "LengthExceededMax"),
    ({"image_type": "default", "tags": "🎉"}, "IllegalCharacters"),
])
def test_create_upload_image_validation(sandbox, fields, code):
    result = refused(sandbox, lambda c: c.create_upload_image(
        vod.CreateUploadImageRequest(**fields)))
    assert result[:2] == (code, 400)


def test_get_image_info(sandbox):
    client = sdk_client(sandbox)
    image_id = client.create_upload_image(vod.CreateUploadImageRequest(
        image_type="default", title="Poster", original_file_name="poster.png")).body.image_id

    info = client.get_image_info(vod.GetImageInfoRequest(image_id=image_id)).body.image_info
    assert (info.image_id, info.status, info.title) == (image_id, "Uploading", "Poster")
    assert info.mezzanine.original_file_name == "poster.png"
    error = vod_error(lambda: client.get_image_info(vod.GetImageInfoRequest(image_id="f" * 32)))
    assert (error.code, error.status_code) == ("InvalidImage.NotFound", 404)


# --- attached media --------------------------------------------------------------------


def test_create_upload_attached_media_answers_with_vods_shape(sandbox):
    body = sdk_client(sandbox).create_upload_attached_media(vod.CreateUploadAttachedMediaRequest(
        business_type="watermark", media_ext="png", file_name="logo.gif", cate_ids="1,2")).body

    assert set(body.to_map()) == {"RequestId", "MediaId", "MediaURL", "FileURL",
                                  "UploadAddress", "UploadAuth"}
    # MediaExt wins over the FileName's extension.
    assert b64json(body.upload_address)["FileName"].endswith(".png")
    assert body.media_url == body.file_url
    assert sandbox.get_attached_media(body.media_id)["BusinessType"] == "watermark"


def test_attached_media_ext_may_come_from_the_file_name(sandbox):
    body = sdk_client(sandbox).create_upload_attached_media(vod.CreateUploadAttachedMediaRequest(
        business_type="subtitle", file_name="en.VTT")).body
    assert b64json(body.upload_address)["FileName"].endswith(".vtt")


@pytest.mark.parametrize("fields,code", [
    ({"media_ext": "png"}, "MissingParameter"),
    ({"business_type": "video", "media_ext": "mp4"}, "InvalidParameter"),
    ({"business_type": "watermark", "media_ext": "srt"}, "InvalidParameter"),
    ({"business_type": "subtitle", "media_ext": "mp4"}, "InvalidParameter"),
    ({"business_type": "material"}, "MissingParameter"),
    ({"business_type": "subtitle", "file_name": "subs.mp4"}, "InvalidFileName.Extension"),
    ({"business_type": "material", "media_ext": "zip", "cate_ids": "1,2,3,4,5,6"},
     "InvalidParameter"),
    ({"business_type": "material", "media_ext": "zip", "title": "😀"}, "IllegalCharacters"),
])
def test_create_upload_attached_media_validation(sandbox, fields, code):
    result = refused(sandbox, lambda c: c.create_upload_attached_media(
        vod.CreateUploadAttachedMediaRequest(**fields)))
    assert result[:2] == (code, 400)


def test_get_attached_media_info_reports_the_missing(sandbox):
    client = sdk_client(sandbox)
    media_id = client.create_upload_attached_media(vod.CreateUploadAttachedMediaRequest(
        business_type="material", media_ext="zip", title="Pack")).body.media_id

    body = client.get_attached_media_info(
        vod.GetAttachedMediaInfoRequest(media_ids=f"{media_id},{'f' * 32}")).body

    assert [(m.media_id, m.status, m.type) for m in body.attached_media_list] == \
        [(media_id, "Uploading", "material")]
    assert body.non_exist_media_ids == ["f" * 32]
    too_many = ",".join(f"{i:032x}" for i in range(21))
    error = vod_error(lambda: client.get_attached_media_info(
        vod.GetAttachedMediaInfoRequest(media_ids=too_many)))
    assert (error.code, error.status_code) == ("InvalidParameter", 400)


# --- lookups and deletion --------------------------------------------------------------


def test_get_video_info(sandbox):
    client = sdk_client(sandbox)
    video_id = client.create_upload_video(video(
        description="About", tags="a,b", cate_id=9, file_size=2048)).body.video_id

    info = client.get_video_info(vod.GetVideoInfoRequest(video_id=video_id)).body.video
    assert (info.video_id, info.title, info.status) == (video_id, "Clip", "Uploading")
    assert (info.description, info.tags, info.cate_id, info.size) == ("About", "a,b", 9, 2048)
    assert info.app_id == "app-1000000" and info.storage_location and info.creation_time
    error = vod_error(lambda: client.get_video_info(vod.GetVideoInfoRequest(video_id="e" * 32)))
    assert (error.code, error.status_code) == ("InvalidVideo.NotFound", 404)


def test_ids_are_per_kind(sandbox):
    client = sdk_client(sandbox)
    image_id = client.create_upload_image(
        vod.CreateUploadImageRequest(image_type="default")).body.image_id
    error = vod_error(lambda: client.get_video_info(vod.GetVideoInfoRequest(video_id=image_id)))
    assert error.code == "InvalidVideo.NotFound"


def test_delete_operations(sandbox):
    client = sdk_client(sandbox)
    video_id = client.create_upload_video(video(reference_id="to-delete")).body.video_id
    image = client.create_upload_image(vod.CreateUploadImageRequest(image_type="default")).body
    media_id = client.create_upload_attached_media(vod.CreateUploadAttachedMediaRequest(
        business_type="material", media_ext="zip")).body.media_id

    deleted = client.delete_video(vod.DeleteVideoRequest(video_ids=f"{video_id},{'e' * 32}"))
    assert deleted.body.non_exist_video_ids == ["e" * 32]
    client.delete_image(vod.DeleteImageRequest(delete_image_type="ImageURL",
                                               image_urls=image.image_url))
    gone = client.delete_attached_media(vod.DeleteAttachedMediaRequest(media_ids=media_id))
    assert gone.body.non_exist_media_ids == []

    assert sandbox.count_videos() == sandbox.count_images() == 0
    assert sandbox.count_attached_media() == 0
    # The ReferenceId of a deleted video is free again.
    assert client.create_upload_video(video(reference_id="to-delete")).body.video_id


def test_delete_image_by_id_and_its_validation(sandbox):
    client = sdk_client(sandbox)
    image_id = client.create_upload_image(
        vod.CreateUploadImageRequest(image_type="default")).body.image_id
    client.delete_image(vod.DeleteImageRequest(delete_image_type="ImageId", image_ids=image_id))
    assert sandbox.get_image(image_id) is None
    error = vod_error(lambda: client.delete_image(vod.DeleteImageRequest(
        delete_image_type="Everything")))
    assert (error.code, error.status_code) == ("InvalidParameter", 400)
    error = vod_error(lambda: client.delete_video(vod.DeleteVideoRequest()))
    assert error.code == "MissingParameter"


def test_batch_lookups_by_id_and_by_reference(sandbox):
    client = sdk_client(sandbox)
    video_id = client.create_upload_video(video(reference_id="batch-1")).body.video_id
    image_id = client.create_upload_image(
        vod.CreateUploadImageRequest(image_type="default")).body.image_id

    videos = client.get_video_infos(
        vod.GetVideoInfosRequest(video_ids=f"{video_id},{'e' * 32}")).body
    assert [(v.video_id, v.reference_id) for v in videos.video_list] == [(video_id, "batch-1")]
    assert videos.non_exist_video_ids == ["e" * 32]
    by_reference = client.get_video_infos(
        vod.GetVideoInfosRequest(reference_ids="batch-1,batch-2")).body
    assert [v.video_id for v in by_reference.video_list] == [video_id]
    assert by_reference.non_exist_reference_ids == ["batch-2"]

    images = client.get_image_infos(vod.GetImageInfosRequest(image_ids=f"{image_id},{'f' * 32}"))
    assert [i.image_id for i in images.body.image_info] == [image_id]
    assert images.body.non_exist_image_ids == ["f" * 32]


def test_tests_can_move_a_media_on_or_make_it_vanish(sandbox):
    client = sdk_client(sandbox)
    video_id = client.create_upload_video(video()).body.video_id
    image_id = client.create_upload_image(
        vod.CreateUploadImageRequest(image_type="default")).body.image_id

    state = sandbox.set_status(video_id, "Normal", Size=4096, Duration=12.5)
    assert state["Status"] == "Normal"
    info = client.get_video_info(vod.GetVideoInfoRequest(video_id=video_id)).body.video
    assert (info.status, info.size, info.duration) == ("Normal", 4096, 12.5)
    assert sandbox.forget(image_id) is True and sandbox.forget(image_id) is False
    assert vod_error(lambda: client.get_image_info(
        vod.GetImageInfoRequest(image_id=image_id))).code == "InvalidImage.NotFound"
    with pytest.raises(KeyError):
        sandbox.set_status("0" * 32, "Normal")
