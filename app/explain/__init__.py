"""Per-word maps of the chat's answers over the scene (Grad-CAM and friends)."""
