"""linkstack: a CCSDS space-to-ground link and protocol stack emulator.

What a script needs is importable from here::

    import linkstack
    from linkstack import Emulation, Params, load_scenario

    async def main():
        settings = load_scenario()  # the default scenario; or load_scenario("file.toml")
        clock = linkstack.make_clock(True, settings.scenario.epoch, start_t_s=5290.0)
        async with Emulation(clock, settings.emulation) as emu:
            answer, timeline = await emu.client.ask("Hello?", Params(max_new_tokens=8))

    linkstack.run(main)  # in emulated time

The codecs' main classes (:class:`SpacePacket`, :class:`TmFrame`, :class:`TcFrame`,
:class:`AosFrame`, :class:`UslpFrame`, :class:`ReedSolomon`, the coded chains,
:class:`Fop`, :class:`Farm`, :class:`Clcw`) are here too. Names are imported when first
used, so that ``import linkstack`` stays light (the command line imports it for its
version).
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    # running an emulation
    "Emulation": "linkstack.runtime.emulation",
    "EmulationConfig": "linkstack.runtime.config",
    "ScenarioFile": "linkstack.runtime.scenario",
    "make_clock": "linkstack.runtime.clock",
    "run": "linkstack.runtime.clock",
    "EmulatedClock": "linkstack.runtime.clock",
    "WallClock": "linkstack.runtime.clock",
    "Client": "payloads.client",
    "ClientConfig": "payloads.client",
    "QueryRefusedError": "payloads.client",
    "Params": "payloads.messages",
    "Timeline": "payloads.timeline",
    "PcapCapture": "linkstack.capture.pcap",
    # the codecs and protocol machines
    "SpacePacket": "linkstack.ccsds.spp",
    "TmFrame": "linkstack.ccsds.tm",
    "TmMasterChannel": "linkstack.ccsds.tm",
    "TmReceiver": "linkstack.ccsds.tm",
    "TcFrame": "linkstack.ccsds.tc",
    "TcReceiver": "linkstack.ccsds.tc",
    "AosFrame": "linkstack.ccsds.aos",
    "AosMasterChannel": "linkstack.ccsds.aos",
    "AosReceiver": "linkstack.ccsds.aos",
    "UslpFrame": "linkstack.ccsds.uslp",
    "UslpMasterChannel": "linkstack.ccsds.uslp_channels",
    "UslpReceiver": "linkstack.ccsds.uslp_channels",
    "ReedSolomon": "linkstack.ccsds.coding.rs",
    "CaduTransmitter": "linkstack.ccsds.coding.chains",
    "CaduReceiver": "linkstack.ccsds.coding.chains",
    "CltuTransmitter": "linkstack.ccsds.coding.chains",
    "CltuReceiver": "linkstack.ccsds.coding.chains",
    "Clcw": "linkstack.ccsds.cop1.clcw",
    "Fop": "linkstack.ccsds.cop1.fop",
    "Farm": "linkstack.ccsds.cop1.farm",
    # the error family
    "LinkstackError": "linkstack.errors",
    "DecodeError": "linkstack.errors",
    "ConfigError": "linkstack.errors",
}

__all__ = [
    "AosFrame",
    "AosMasterChannel",
    "AosReceiver",
    "CaduReceiver",
    "CaduTransmitter",
    "Clcw",
    "Client",
    "ClientConfig",
    "CltuReceiver",
    "CltuTransmitter",
    "ConfigError",
    "DecodeError",
    "EmulatedClock",
    "Emulation",
    "EmulationConfig",
    "Farm",
    "Fop",
    "LinkstackError",
    "Params",
    "PcapCapture",
    "QueryRefusedError",
    "ReedSolomon",
    "ScenarioFile",
    "SpacePacket",
    "TcFrame",
    "TcReceiver",
    "Timeline",
    "TmFrame",
    "TmMasterChannel",
    "TmReceiver",
    "UslpFrame",
    "UslpMasterChannel",
    "UslpReceiver",
    "WallClock",
    "__version__",
    "load_scenario",
    "make_clock",
    "run",
]


def load_scenario(path: str | os.PathLike[str] | None = None) -> ScenarioFile:
    """A scenario file, read and checked (:mod:`linkstack.runtime.scenario`); the
    default scenario when ``path`` is None. Its ``.emulation`` is the
    :class:`EmulationConfig` an :class:`Emulation` runs."""
    from linkstack.runtime import scenario  # noqa: PLC0415 - numpy, sgp4: only when used

    return scenario.load_default() if path is None else scenario.load(path)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'linkstack' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from linkstack.capture.pcap import PcapCapture
    from linkstack.ccsds.aos import AosFrame, AosMasterChannel, AosReceiver
    from linkstack.ccsds.coding.chains import (
        CaduReceiver,
        CaduTransmitter,
        CltuReceiver,
        CltuTransmitter,
    )
    from linkstack.ccsds.coding.rs import ReedSolomon
    from linkstack.ccsds.cop1.clcw import Clcw
    from linkstack.ccsds.cop1.farm import Farm
    from linkstack.ccsds.cop1.fop import Fop
    from linkstack.ccsds.spp import SpacePacket
    from linkstack.ccsds.tc import TcFrame, TcReceiver
    from linkstack.ccsds.tm import TmFrame, TmMasterChannel, TmReceiver
    from linkstack.ccsds.uslp import UslpFrame
    from linkstack.ccsds.uslp_channels import UslpMasterChannel, UslpReceiver
    from linkstack.errors import ConfigError, DecodeError, LinkstackError
    from linkstack.runtime.clock import EmulatedClock, WallClock, make_clock, run
    from linkstack.runtime.config import EmulationConfig
    from linkstack.runtime.emulation import Emulation
    from linkstack.runtime.scenario import ScenarioFile
    from payloads.client import Client, ClientConfig, QueryRefusedError
    from payloads.messages import Params
    from payloads.timeline import Timeline
