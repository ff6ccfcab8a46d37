"""vodsandbox: a local stand-in for Alibaba Cloud ApsaraVideo VOD's OpenAPI, on loopback.

The real SDK (alibabacloud-vod20170321) runs unchanged against it: signatures (V3 and V1) are
checked, the operations answer with VOD's shapes and errors, and faults can be injected. It
also serves the OSS bucket its upload credentials point at (oss2 uploads to it, STS
credentials checked) and sends VOD's signed event notifications after an upload.
Standard library only. See README.md.
"""

from .config import DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET, SandboxConfig
from .errors import VodError
from .faults import Fault, Faults
from .sandbox import Sandbox
from .state import Clock

__all__ = [
           "DEV_ACCESS_KEY_ID",
           "DEV_ACCESS_KEY_SECRET",
           "Clock",
           "Fault",
           "Faults",
           "Sandbox",
           "SandboxConfig",
           "VodError",
]
