"""An example xrdzoo plugin: one encoder, one backbone, one loss and one metric, registered by entry points.

Nothing here is imported by xrdzoo until a component is used: see ``[project.entry-points]`` in pyproject.toml.
"""
