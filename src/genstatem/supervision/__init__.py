"""OTP-style supervision: child specs, ``Supervisor`` and ``DynamicSupervisor``."""

from ._dynamic import DynamicSupervisor as DynamicSupervisor
from ._errors import ChildRunning as ChildRunning
from ._errors import MaxChildren as MaxChildren
from ._errors import NoSuchChild as NoSuchChild
from ._spec import ChildCounts as ChildCounts
from ._spec import ChildInfo as ChildInfo
from ._spec import ChildSpec as ChildSpec
from ._spec import DynamicSupervisorSpec as DynamicSupervisorSpec
from ._spec import SupervisorSpec as SupervisorSpec
from ._supervisor import Supervisor as Supervisor

__all__ = [
    "ChildCounts",
    "ChildInfo",
    "ChildRunning",
    "ChildSpec",
    "DynamicSupervisor",
    "DynamicSupervisorSpec",
    "MaxChildren",
    "NoSuchChild",
    "Supervisor",
    "SupervisorSpec",
]
