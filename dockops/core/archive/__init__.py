"""Images and filesystems as files: save/load, export/import, the tar checker, delta archives."""
