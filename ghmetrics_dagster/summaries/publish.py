"""Copies exported reports to S3 when GHMETRICS_REPORTS_URI is an s3:// URI (no Dagster import).

Local files under $GHMETRICS_HOME/reports stay the source; S3 is where a deployment whose
containers come and go keeps them.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import urlsplit


def publish_reports(paths: list[Path], uri: str | None) -> list[str]:
    """Uploads the files under `uri` (GHMETRICS_REPORTS_URI); returns their s3:// URIs ([] when unset)."""
    if not uri:
        return []
    if not uri.startswith("s3://"):
        raise ValueError(f"GHMETRICS_REPORTS_URI={uri!r} is not an s3:// URI; use s3://BUCKET/PREFIX or unset it")
    import boto3  # boto3 reads credentials, region and AWS_ENDPOINT_URL_S3 from the environment

    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    client = boto3.client("s3")
    published = []
    for path in paths:
        key = f"{prefix}/{path.name}" if prefix else path.name
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
        published.append(f"s3://{bucket}/{key}")
    return published
