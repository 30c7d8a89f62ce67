"""Soft bindings of released videos: their manifests kept for resolution, and the C2PA Soft Binding
Resolution API (``/sbr/v1``) that looks a manifest up by watermark, fingerprint or the content itself."""
