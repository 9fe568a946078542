"""Names shared by the object-store tests and their fixtures (tests/sharepoint/conftest.py)."""

from __future__ import annotations

S3_CONN_ID = "landing_store"  # the Airflow connection id an ObjectStoragePath names
BUCKET = "landing"  # created in the moto server by the s3_fs fixture
