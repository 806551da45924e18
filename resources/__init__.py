"""Files the app needs at run time (the sample scene, the style sheet).

Installed as the package ``sarlang_resources`` (pyproject.toml maps this folder), so a wheel
carries them; find them through :mod:`sarlang_core.resources`, not by path.
"""
