"""(being built)"""

from __future__ import annotations

from fastapi import APIRouter

from lockbox.web.page import PageRoute

router = APIRouter(route_class=PageRoute)
