import pytest

from project.core.errors import ConfigError
from project.core.registry import Registry


def test_register_lookup_and_refuse_duplicates():
    widgets: Registry[type] = Registry("widget")

    @widgets.register("round")
    class Round:
        pass

    assert widgets.lookup("round") is Round and list(widgets) == ["round"]
    with pytest.raises(ValueError, match="widget 'round' registered twice"):
        widgets.register("round")(object)
    with pytest.raises(ConfigError, match=r"unknown widget 'rond'; choose from \['round'\]"):
        widgets.lookup("rond")
