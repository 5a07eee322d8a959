"""The version of kd-theorems, in one place: pyproject.toml reads it
(``[tool.setuptools.dynamic]``), and :mod:`derive` and :mod:`verify` export it as
``__version__``."""

__version__ = "0.1.0"
