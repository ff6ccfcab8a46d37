"""Upload a local file through vodportal, the way a client app does, and follow its status.

    .venv/bin/python scripts/upload_file.py movie.mp4 --token vodp_... [--portal URL]

1. POST /api/v1/videos/ (or images/, attached-media/) for an upload credential;
2. upload the bytes straight to OSS with oss2 and the STS credential (multipart for big files);
3. poll the record until VOD's callbacks have moved it to `ready`.
"""

import argparse
import sys
import time
from pathlib import Path

import oss2
import requests

KINDS = {
    "video": ("videos", "video_id"),
    "image": ("images", "image_id"),
    "attached-media": ("attached-media", "media_id"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--token", required=True, help="an API token (make run prints one)")
    parser.add_argument("--portal", default="http://127.0.0.1:8000")
    parser.add_argument("--kind", choices=KINDS, default="video")
    parser.add_argument("--title", default=None)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()

    route, id_field = KINDS[args.kind]
    headers = {"Authorization": f"Token {args.token}"}
    body = {"title": args.title or args.path.stem}
    if args.kind == "video":
        body.update(file_name=args.path.name, file_size=args.path.stat().st_size)
    elif args.kind == "image":
        body.update(image_type="default", original_file_name=args.path.name)
    else:
        body.update(business_type="material", file_name=args.path.name)
    answer = requests.post(f"{args.portal}/api/v1/{route}/", json=body, headers=headers,
                           timeout=30)
    if answer.status_code != 201:
        print(f"credential refused: {answer.status_code} {answer.text}", file=sys.stderr)
        return 1
    record = answer.json()
    media_id, upload = record[id_field], record["upload"]
    print(f"{id_field} {media_id}: uploading to {upload['endpoint']}/{upload['bucket']}/"
          f"{upload['object_key']}")

    auth = oss2.StsAuth(upload["access_key_id"], upload["access_key_secret"],
                        upload["security_token"])
    bucket = oss2.Bucket(auth, upload["endpoint"], upload["bucket"])
    # Multipart above 10 MB, with resumable parts: what the official upload SDKs do.
    oss2.resumable_upload(bucket, upload["object_key"], str(args.path),
                          multipart_threshold=10 * 1024 * 1024, part_size=5 * 1024 * 1024,
                          store=oss2.ResumableStore(root=str(Path.cwd() / "var")))
    print("uploaded; waiting for VOD's notifications...")

    deadline, status = time.time() + args.timeout, None
    while time.time() < deadline:
        record = requests.get(f"{args.portal}/api/v1/{route}/{media_id}/", headers=headers,
                              timeout=10).json()
        current = record["status"]
        if current != status:
            error = record.get("error")
            print(f"status: {current}" + (f" ({error['code']}: {error['message']})"
                                          if error else ""))
            status = current
        if status in ("ready", "failed", "blocked", "deleted", "cancelled"):
            return 0 if status == "ready" else 1
        time.sleep(0.5)
    print("timed out waiting for `ready`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
