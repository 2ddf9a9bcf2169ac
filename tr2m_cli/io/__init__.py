"""Readers and writers: images, captions, depth files, previews, point clouds, manifests."""
