"""What an AWS administrator needs to set up STS AssumeRole for a location."""

from __future__ import annotations

import json

from django.conf import settings

from .models import BackupLocation

# Everything the console does with a bucket: objects, multipart uploads, listing.
OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
BUCKET_ACTIONS = ["s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation"]


def trust_policy(location: BackupLocation) -> str:
    """The role's trust policy: the console's identity may assume it with the external ID."""
    principal = settings.PALETTE_AWS_PRINCIPAL_ARN or "<ARN of the identity the console runs as>"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": location.external_id}},
            }
        ],
    }
    return json.dumps(policy, indent=2)


def permissions_policy(location: BackupLocation) -> str:
    """The permissions the role needs on the bucket (and only that bucket)."""
    bucket = location.bucket or "<bucket>"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": OBJECT_ACTIONS, "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow", "Action": BUCKET_ACTIONS, "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }
    return json.dumps(policy, indent=2)
