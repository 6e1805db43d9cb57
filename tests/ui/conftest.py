"""Fixtures shared by the controller's tests and those of the parts it delegates to: ``loop``
(a qasync loop per module) and ``ctl`` (a Controller shut down after each test). A module that
defines its own ``loop`` or ``ctl`` uses that one."""

from tests.support.controller_kit import ctl, loop  # noqa: F401
