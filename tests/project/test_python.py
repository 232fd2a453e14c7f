from __future__ import annotations

from typing import Any

import pytest

from lockgate.project import TransformFunction, transform
from lockgate.project.python import collect_transforms


def test_bare_decorator_infers_inputs_from_parameter_names() -> None:
    with collect_transforms() as registered:

        @transform
        def gold_features(silver_orders: Any, silver_customers: Any) -> Any:
            return silver_orders

    (tf,) = registered
    assert isinstance(tf, TransformFunction)
    assert tf.name == "gold_features" and tf.as_ == "duckdb"
    assert dict(tf.inputs) == {
        "silver_orders": "silver_orders",
        "silver_customers": "silver_customers",
    }
    assert tf.datasets == ("silver_orders", "silver_customers")
    assert tf.func is gold_features and gold_features(1, 2) == 1  # still a plain function
    assert tf.file == __file__ and tf.line is not None


def test_options_rename_and_map_inputs() -> None:
    with collect_transforms() as registered:

        @transform(name="daily", inputs={"orders": "silver_orders"}, as_="arrow")
        def f(orders: Any, customers: Any) -> Any:
            return orders

    (tf,) = registered
    assert tf.name == "daily" and tf.as_ == "arrow"
    assert dict(tf.inputs) == {"orders": "silver_orders", "customers": "customers"}


def test_outside_a_load_nothing_is_registered_but_the_function_is_marked() -> None:
    with collect_transforms() as outer:
        pass

    @transform
    def lonely(a: Any) -> Any:
        return a

    assert outer == []
    assert lonely.__lockgate_transform__.inputs == {"a": "a"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"as_": "spark"}, "use one of duckdb, arrow, polars, pandas"),
        ({"inputs": {"nope": "x"}}, "names parameters it does not have: nope"),
        ({"name": "bad name"}, "invalid transform name"),
    ],
)
def test_bad_options_raise(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):

        @transform(**kwargs)
        def f(a: Any) -> Any:
            return a


def test_var_args_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"\*inputs"):

        @transform
        def f(*inputs: Any) -> Any:
            return inputs
