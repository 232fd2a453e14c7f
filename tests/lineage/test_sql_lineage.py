"""Column lineage of single SQL queries: the cases that break naive lineage."""

from __future__ import annotations

from lockgate.lineage.sql import OUTPUT, SqlLineage, analyse_sql

SCHEMAS = {
    "raw_orders": ("id", "Amount", "cust_id", "status", "ts", "prix_€"),
    "customers": ("cust_id", "name", "country"),
}


def edges(r: SqlLineage) -> set[tuple[str, str, str, str]]:
    """(source dataset.column, output column, kind, subtype)"""
    assert r.error is None, r.error
    return {
        (f"{e.source.dataset}.{e.source.column}", e.target.column, e.kind.value, e.subtype.value)
        for e in r.edges
        if e.target.dataset == OUTPUT
    }


def direct(r: SqlLineage) -> set[tuple[str, str, str]]:
    return {(s, t, sub) for s, t, k, sub in edges(r) if k == "DIRECT"}


def test_identity_transformation_and_aggregation() -> None:
    r = analyse_sql(
        "SELECT cust_id, sum(Amount) AS total, upper(status) AS st FROM raw_orders "
        "GROUP BY cust_id, status",
        SCHEMAS,
    )
    assert r.columns == ("cust_id", "total", "st")
    assert direct(r) == {
        ("raw_orders.cust_id", "cust_id", "IDENTITY"),
        ("raw_orders.amount", "total", "AGGREGATION"),
        ("raw_orders.status", "st", "TRANSFORMATION"),
    }
    # GROUP BY columns are INDIRECT lineage of every output column
    grouped = {(s, t) for s, t, k, sub in edges(r) if sub == "GROUP_BY"}
    assert grouped == {
        (s, t) for s in ("raw_orders.cust_id", "raw_orders.status") for t in r.columns
    }


def test_cte_chain_is_followed_to_the_table() -> None:
    r = analyse_sql(
        """
        WITH a AS (SELECT id, Amount * 2 AS twice FROM raw_orders WHERE status = 'ok'),
             b AS (SELECT id, twice + 1 AS plus FROM a)
        SELECT id AS order_id, plus AS value FROM b
        """,
        SCHEMAS,
    )
    assert direct(r) == {
        ("raw_orders.id", "order_id", "IDENTITY"),
        ("raw_orders.amount", "value", "TRANSFORMATION"),
    }
    assert ("raw_orders.status", "value", "INDIRECT", "FILTER") in edges(r)


def test_select_star_expands_against_the_known_schema() -> None:
    r = analyse_sql("SELECT * FROM customers", SCHEMAS)
    assert r.columns == ("cust_id", "name", "country")
    assert direct(r) == {(f"customers.{c}", c, "IDENTITY") for c in r.columns}


def test_select_star_over_an_unknown_schema_is_reported_not_guessed() -> None:
    r = analyse_sql("SELECT * FROM not_built_yet", SCHEMAS)
    assert r.star_unresolved
    assert not r.edges


def test_reading_a_dataset_without_a_schema_yet_still_traces_named_columns() -> None:
    r = analyse_sql("SELECT a, b + 1 AS c FROM not_built_yet", SCHEMAS)
    assert direct(r) == {
        ("not_built_yet.a", "a", "IDENTITY"),
        ("not_built_yet.b", "c", "TRANSFORMATION"),
    }


def test_aliases_that_shadow_other_columns_resolve_through_the_source() -> None:
    # the output 'status' is the input 'id' and the other way round
    r = analyse_sql(
        "SELECT o.id AS status, o.status AS id FROM (SELECT id, status FROM raw_orders) AS o",
        SCHEMAS,
    )
    assert direct(r) == {
        ("raw_orders.id", "status", "IDENTITY"),
        ("raw_orders.status", "id", "IDENTITY"),
    }


def test_table_alias_named_like_another_dataset() -> None:
    # 'customers' here is an alias of raw_orders: lineage must follow node.source
    r = analyse_sql("SELECT customers.cust_id FROM raw_orders AS customers", SCHEMAS)
    assert direct(r) == {("raw_orders.cust_id", "cust_id", "IDENTITY")}


def test_union_takes_each_branch_by_position() -> None:
    r = analyse_sql(
        "SELECT id AS k, status FROM raw_orders UNION ALL SELECT cust_id, name FROM customers",
        SCHEMAS,
    )
    assert r.columns == ("k", "status")
    assert direct(r) == {
        ("raw_orders.id", "k", "IDENTITY"),
        ("customers.cust_id", "k", "IDENTITY"),
        ("raw_orders.status", "status", "IDENTITY"),
        ("customers.name", "status", "IDENTITY"),
    }


def test_subquery_in_where_is_an_indirect_filter() -> None:
    r = analyse_sql(
        "SELECT id FROM raw_orders WHERE cust_id IN "
        "(SELECT cust_id FROM customers WHERE country = 'DE')",
        SCHEMAS,
    )
    assert direct(r) == {("raw_orders.id", "id", "IDENTITY")}
    filters = {s for s, t, k, sub in edges(r) if sub == "FILTER"}
    assert filters == {"raw_orders.cust_id", "customers.cust_id", "customers.country"}


def test_scalar_subquery_in_select_is_direct() -> None:
    r = analyse_sql("SELECT id, (SELECT max(name) FROM customers) AS top FROM raw_orders", SCHEMAS)
    assert ("customers.name", "top", "DIRECT") in {(s, t, k) for s, t, k, _ in edges(r)}


def test_window_partition_and_order_are_indirect_and_the_value_is_aggregated() -> None:
    r = analyse_sql(
        "SELECT id, sum(Amount) OVER (PARTITION BY cust_id ORDER BY ts) AS running FROM raw_orders",
        SCHEMAS,
    )
    e = edges(r)
    assert ("raw_orders.amount", "running", "DIRECT", "AGGREGATION") in e
    assert ("raw_orders.cust_id", "running", "INDIRECT", "WINDOW") in e
    assert ("raw_orders.ts", "running", "INDIRECT", "WINDOW") in e
    assert not {x for x in e if x[1] == "id" and x[3] == "WINDOW"}


def test_join_using_keys_of_both_sides_are_indirect_join() -> None:
    r = analyse_sql(
        "SELECT o.id, c.name FROM raw_orders o JOIN customers c USING (cust_id)", SCHEMAS
    )
    joins = {(s, t) for s, t, k, sub in edges(r) if sub == "JOIN"}
    assert joins == {
        (s, t) for s in ("raw_orders.cust_id", "customers.cust_id") for t in ("id", "name")
    }
    assert direct(r) == {
        ("raw_orders.id", "id", "IDENTITY"),
        ("customers.name", "name", "IDENTITY"),
    }


def test_case_condition_is_indirect_conditional_and_branches_direct() -> None:
    r = analyse_sql(
        "SELECT CASE WHEN status = 'x' THEN Amount ELSE 0 END AS a FROM raw_orders", SCHEMAS
    )
    e = edges(r)
    assert ("raw_orders.status", "a", "INDIRECT", "CONDITIONAL") in e
    assert ("raw_orders.amount", "a", "DIRECT", "TRANSFORMATION") in e


def test_order_by_output_alias_traces_to_its_input() -> None:
    r = analyse_sql("SELECT Amount AS a, id FROM raw_orders ORDER BY a DESC", SCHEMAS)
    sorts = {s for s, t, k, sub in edges(r) if sub == "SORT"}
    assert sorts == {"raw_orders.amount"}


def test_quoted_and_unicode_identifiers() -> None:
    r = analyse_sql('SELECT "prix_€" AS "Prix TTC", "Amount" AS "Montant" FROM raw_orders', SCHEMAS)
    assert r.columns == ("Prix TTC", "Montant")
    assert direct(r) == {
        ("raw_orders.prix_€", "Prix TTC", "IDENTITY"),
        ("raw_orders.amount", "Montant", "IDENTITY"),
    }


def test_count_star_has_no_column_lineage_but_filters_still_count() -> None:
    r = analyse_sql("SELECT count(*) AS n FROM raw_orders WHERE status = 'ok'", SCHEMAS)
    assert direct(r) == set()
    assert edges(r) == {("raw_orders.status", "n", "INDIRECT", "FILTER")}


def test_not_a_query_and_broken_sql_give_an_error_not_a_crash() -> None:
    assert analyse_sql("SELECT FROM WHERE (", SCHEMAS).error
    assert analyse_sql("DELETE FROM raw_orders", SCHEMAS).error
