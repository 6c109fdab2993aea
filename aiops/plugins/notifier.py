"""The base class of notification channels."""

from __future__ import annotations

from abc import abstractmethod

from aiops.plugins.base import Plugin
from aiops.types import Delivery, Message


class Notifier(Plugin):
    """Delivers a message; raises :class:`aiops.errors.DeliveryError` saying whether a retry can help."""

    min_interval: float = 0.0
    """Seconds the outbox waits between two sends to this channel (a provider's rate limit); 0: no wait."""

    resend_interval: float = 0.0
    """Seconds after which a still-firing incident is announced again on this channel; 0 defers to the
    route's setting."""

    @abstractmethod
    def send(self, message: Message) -> Delivery:
        """Deliver ``message`` once; the outbox retries recoverable failures."""
