"""pytest: the integration modules import lightning / transformers (optional extras) and have
no doctests; tests/test_monitor_integrations.py tests them with the real libraries."""

collect_ignore = ["lightning_callback.py", "hf_callback.py"]
