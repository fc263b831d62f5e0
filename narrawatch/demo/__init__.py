"""The offline demo: real bundled content replayed over loopback through the whole pipeline."""

from narrawatch.demo.run import run_demo, write_demo_config

__all__ = ["run_demo", "write_demo_config"]
