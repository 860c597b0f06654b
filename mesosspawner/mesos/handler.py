"""What the owner of a ``SchedulerClient`` hears: one coroutine per kind of event."""

from __future__ import annotations

from . import events

__all__ = ["EventHandler"]


class EventHandler:
    """Base class for the owner of a SchedulerClient; override what you need.

    Every method is a coroutine called from one consumer task, in the order events arrived.
    Exceptions are logged and contained: they never stop the stream or tear anything down.
    """

    async def subscribed(self, event: events.Subscribed) -> None:
        """Subscribed (again): framework id, heartbeat interval, master info."""

    async def offers(self, event: events.Offers) -> None:
        """New offers; decline or accept them, or they are held until rescinded."""

    async def rescind(self, event: events.Rescind) -> None:
        """An offer is no longer valid."""

    async def inverse_offers(self, event: events.InverseOffers) -> None:
        """Resources asked back before maintenance: ``answer_inverse_offers``."""

    async def rescind_inverse_offer(self, event: events.RescindInverseOffer) -> None:
        """An inverse offer is no longer valid (the maintenance schedule changed)."""

    async def update(self, status: events.TaskStatus) -> None:
        """A task status. The client acknowledges it afterwards iff it carries a ``uuid``."""

    async def failure(self, event: events.Failure) -> None:
        """An agent or executor failed."""

    async def message(self, event: events.Message) -> None:
        """A framework message from an executor."""

    async def error(self, event: events.Error) -> None:
        """The master reported an ERROR, e.g. "Framework has been removed"."""

    async def disconnected(self, reason: str) -> None:
        """The subscribed stream was lost; the client is reconnecting."""
