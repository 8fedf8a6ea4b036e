"""Read the image of a ``POST /v1/predict`` body: multipart (field ``file``), JSON with base64, or raw image bytes."""

from __future__ import annotations

import json

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from instseg.serve.decode import clean_name, decode_base64
from instseg.serve.errors import ApiError

HOW_TO_SEND = (
    "send multipart/form-data with the image in a 'file' field, application/json with a base64 'image' field, "
    "or the image bytes with an image/* content type"
)


class InMemoryMultiPartParser(MultiPartParser):
    """Starlette's multipart parser, keeping uploads in memory: the body limit already bounds them, and the
    server writes no temporary files."""

    spool_max_size = 2**62


async def read_upload(request: Request) -> tuple[bytes, str]:
    """The uploaded image's bytes and a printable name for messages (``ApiError`` 415/422 on a wrong body)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        parser = InMemoryMultiPartParser(request.headers, request.stream(), max_files=1, max_fields=16)
        try:
            form = await parser.parse()
        except MultiPartException as err:
            raise ApiError(422, f"the multipart body cannot be parsed ({err.message})") from err
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ApiError(422, "the multipart body has no file in a 'file' field")
        data = await file.read()
        await form.close()
        return data, clean_name(file.filename)
    if content_type == "application/json":
        body = await request.body()
        try:
            payload = json.loads(body)
        except json.JSONDecodeError as err:
            raise ApiError(422, f"the JSON body cannot be parsed ({err.msg} at character {err.pos})") from err
        except UnicodeDecodeError as err:
            raise ApiError(422, "the JSON body is not UTF-8 text") from err
        if not isinstance(payload, dict) or not isinstance(payload.get("image"), str):
            raise ApiError(422, "the JSON body must be an object with the base64 image in an 'image' string")
        name = clean_name(payload.get("filename") if isinstance(payload.get("filename"), str) else None)
        return decode_base64(payload["image"], name), name
    if content_type.startswith("image/") or content_type == "application/octet-stream":
        return await request.body(), "upload"
    shown = "".join(ch for ch in content_type if ch.isprintable())[:60] or "none"
    raise ApiError(415, f"content type {shown!r} is not accepted: {HOW_TO_SEND}")
