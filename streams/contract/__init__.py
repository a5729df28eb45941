"""The input event contract (v1): the `Event` every valid event becomes, and the
decoder that turns message values into events and rejections."""

from streams.contract.decode import REASONS, Decoded, Limits, Rejection, decode_message
from streams.contract.event import Event

__all__ = ["REASONS", "Decoded", "Event", "Limits", "Rejection", "decode_message"]
