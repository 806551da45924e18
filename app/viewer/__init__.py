"""The scene viewer: views, before/after compare, pipeline panel, rendering, region statistics."""
