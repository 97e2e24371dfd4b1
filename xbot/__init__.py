"""The tooling above the services: the `xbot` command line (`cli`), `xbot up` (`supervisor`), the embedded
NATS and PostgreSQL servers it and the test harness start (`embedded`), and the settings reference
(`settings_doc`). It may import `services/` and `bench/`; nothing under `shared/` or `services/` imports it
(tests/contract/test_layout.py holds that rule)."""
