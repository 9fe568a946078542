"""The emulated Microsoft Graph service: resource models (drives, sites, lists, directory, upload
sessions, blobs, the state that holds them), then the HTTP side (addressing, OData, rendering,
routes, $batch, the files host) and snapshots."""
