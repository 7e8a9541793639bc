"""xrdzoo's shipped pretrained checkpoints and their manifest (the repository's top-level weights/ folder)."""
