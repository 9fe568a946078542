"""The ``spo://`` file system: SharePoint document libraries for fsspec and Airflow's ObjectStoragePath.

``spo://<conn_id>@contoso.sharepoint.com/sites/Finance/Shared Documents/Reports/q1.csv`` is the
browser address of a file with ``https`` replaced by ``spo`` and the Airflow connection in the
user part (docs/object-storage.md). Nothing below ``spo.py`` imports Airflow.
"""
