"""Chat with a VLM about the scene: the panel, its controller and the wiring into the main window."""
