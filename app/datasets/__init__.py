"""Dataset projects: new-project import, the review window, dataset steps and statistics."""
