"""The emulated Microsoft Graph service, its models below its HTTP side (the moto split).

Models (plain objects, no HTTP): ``common`` (Microsoft's limits, errors, naming rules), ``blobs``
(bodies on disk), ``drives`` (item trees and delta), ``item_moves`` (move, rename, copy),
``office`` (SharePoint's rewrite of Office files), ``sites`` (sites and lists), ``directory``
(users and groups), ``uploads`` (upload sessions), ``state`` (all of it, one lock) and
``snapshots`` (persistence).

HTTP: ``addressing`` (Graph's URL grammar), ``odata`` and ``odata_filter`` (query options),
``directory_query`` (Graph's directory query rules), ``render`` (JSON shapes), ``calls``
(an authenticated call), the route sets ``site_routes``, ``list_routes``, ``drive_routes``,
``item_write_routes``, ``upload_routes``, ``delta_routes``, ``directory_routes``, ``batch``,
assembled in ``routes``; and ``files_host`` (pre-authenticated download, upload and monitor URLs).
"""
