"""A deliberately broken xrdzoo plugin, used by xrdzoo's tests."""
