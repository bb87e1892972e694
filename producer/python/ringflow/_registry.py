"""Entry point of the `inspect_ai` group: importing it registers the hook."""

from ._hook import RingflowHooks  # noqa: F401
