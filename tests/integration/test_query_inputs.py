"""Query inputs the service refuses itself, whatever adapter passed them."""

from __future__ import annotations

from datetime import datetime

import pytest

from lockbox.domain.errors import ValidationError
from lockbox.service import audit, requests
from tests.conftest import World


def test_times_without_a_zone_are_refused_naming_the_field(world: World) -> None:
    naive = datetime(2026, 1, 5, 9, 0)  # no time zone: the point of the test
    with pytest.raises(ValidationError) as excinfo:
        requests.list_requests(world.app, world.manager, created_after=naive)
    assert excinfo.value.field == "created_after"
    with pytest.raises(ValidationError) as excinfo:
        audit.query(world.app, world.contoso_auditor, "contoso", until=naive)
    assert excinfo.value.field == "until"


def test_audit_cursor_beyond_the_sequence_range_is_refused(world: World) -> None:
    with pytest.raises(ValidationError) as excinfo:
        audit.query(world.app, world.contoso_auditor, "contoso", after_seq=2**31)
    assert excinfo.value.field == "cursor"
    records, _ = audit.query(world.app, world.contoso_auditor, "contoso", after_seq=2**31 - 1)
    assert records == []
