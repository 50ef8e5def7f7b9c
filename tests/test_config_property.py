"""Property: any params input either loads into a valid config or raises ConfigError, never
another exception (hypothesis mutates the default params.yaml)."""
import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlib.config import Config, from_dict
from genlib.errors import ConfigError

from test_config import DEFAULTS

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["ddpm", "dlpm", "sas_grid", "mlp", "cosine", "dlim", "5e-3"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))


ALL_PATHS = [p for p in paths(DEFAULTS) if p]


@st.composite
def mutated(draw):
    raw = copy.deepcopy(DEFAULTS)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        node = raw
        for part in path[:-1]:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            if isinstance(node, dict):
                if draw(st.booleans()):
                    node[path[-1]] = draw(VALUES)
                else:
                    node.pop(path[-1], None)
    if draw(st.booleans()):
        raw[draw(st.text(max_size=8))] = draw(VALUES)
    return raw


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_loader_returns_config_or_config_error(raw):
    try:
        cfg = from_dict(raw)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(cfg, Config)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(VALUES)
def test_any_top_level_value(raw):
    try:
        from_dict(raw)
    except ConfigError:
        pass
