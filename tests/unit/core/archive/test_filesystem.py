"""What `import` loses of an image (core/archive/filesystem.py) and the --change lines it takes."""

from __future__ import annotations

import pytest

from dockops.core.archive.filesystem import CONFIG_FIELDS, lost_by_import
from dockops.core.images.commit import validate_changes
from dockops.errors import InvalidInput


def test_what_import_loses() -> None:
    assert lost_by_import([]) == ("history", *CONFIG_FIELDS)
    lost = lost_by_import(['CMD ["sh"]', "env A=b"])
    assert "CMD" not in lost and "ENV" not in lost and lost[0] == "history"
    assert validate_changes(["WORKDIR /x"]) == ("WORKDIR /x",)
    for bad in ["RUN make", "", "FROM busybox"]:
        with pytest.raises(InvalidInput, match="invalid change"):
            validate_changes([bad])
