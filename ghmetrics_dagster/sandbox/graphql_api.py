"""GraphQL for the sandbox: GitHub's real schema, GitHub's extra rules and cost, a fast executor.

Each distinct query text is parsed, validated (graphql-core, GitHub's public schema) and
compiled once, then kept in an LRU cache. Compiling turns the operation into plans: per
concrete object type, the ordered list of fields to produce (fragments, inline fragments and
aliases resolved, fields merged), so that executing a page is a walk over prepared data
with no per-field type checks. graphql-core's own `execute` takes ~30 ms for a 50-PR page;
this walk takes a few.

Data model for execution: every object is a dict keyed by schema field name. A value may be
a callable `(args, ctx) -> value` for fields with arguments or that are expensive; abstract
fields (interfaces, unions) return dicts carrying `__typename`. A resolver raises
`FieldError` for GitHub-shaped errors such as NOT_FOUND.

GitHub's own rules, checked after standard validation with the variables applied:
every connection needs `first` or `last` in 1..100, a query may request at most 500,000
nodes, and the cost is the number of requests needed to fill every connection at its full
size divided by 100 (rounded half up, minimum 1).
"""

from __future__ import annotations

import gzip
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphql
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    get_named_type,
    is_abstract_type,
    is_composite_type,
)
from graphql.execution.values import get_argument_values, get_variable_values

SCHEMA_COPY = Path(__file__).parent / "schema" / "github.graphql.gz"
NODE_LIMIT = 500_000
MAX_PAGE = 100

_schema: GraphQLSchema | None = None
_schema_lock = threading.Lock()


def github_schema() -> GraphQLSchema:
    """GitHub's public schema, built once per process (~0.7 s)."""
    global _schema
    with _schema_lock:
        if _schema is None:
            sdl = gzip.decompress(SCHEMA_COPY.read_bytes()).decode()
            # The published SDL repeats a few EnterpriseOwnerInfo fields; strict SDL checks reject that.
            _schema = graphql.build_schema(sdl, assume_valid_sdl=True)
        return _schema


class FieldError(Exception):
    """A GitHub-shaped error raised by a resolver; the field becomes null."""

    def __init__(self, message: str, type_: str | None = None):
        super().__init__(message)
        self.message = message
        self.type = type_


class QueryRejected(Exception):
    """The whole request fails before execution; `errors` is GitHub's `errors` list."""

    def __init__(self, errors: list[dict]):
        super().__init__(errors[0]["message"] if errors else "query rejected")
        self.errors = errors


def _locations(nodes) -> list[dict]:
    out = []
    for node in nodes or ():
        loc = getattr(node, "loc", None)
        if loc is not None and loc.source is not None:
            where = loc.source.get_location(loc.start)
            out.append({"line": where.line, "column": where.column})
    return out


_GITHUB_MESSAGES = [
    (
        re.compile(r"Cannot query field '(?P<field>\w+)' on type '(?P<type>\w+)'\."),
        lambda m: (
            f"Field '{m['field']}' doesn't exist on type '{m['type']}'",
            {"code": "undefinedField", "typeName": m["type"], "fieldName": m["field"]},
        ),
    ),
    (
        re.compile(r"Unknown argument '(?P<arg>\w+)' on field '(?P<type>\w+)\.(?P<field>\w+)'\."),
        lambda m: (
            f"Field '{m['field']}' doesn't accept argument '{m['arg']}'",
            {"code": "argumentNotAccepted", "name": m["field"], "typeName": "Field", "argumentName": m["arg"]},
        ),
    ),
    (
        re.compile(r"Field '(?P<field>\w+)' argument '(?P<arg>\w+)' of type '.+' is required, but it was not provided\."),
        lambda m: (
            f"Field '{m['field']}' is missing required arguments: {m['arg']}",
            {"code": "missingRequiredArguments", "className": "Field", "name": m["field"], "arguments": m["arg"]},
        ),
    ),
]


def format_graphql_error(error: graphql.GraphQLError) -> dict:
    """graphql-core's error as GitHub words the common ones (message, locations, extensions)."""
    message, extensions = error.message, None
    for pattern, rewrite in _GITHUB_MESSAGES:
        match = pattern.match(error.message)
        if match:
            message, extensions = rewrite(match)
            break
    out: dict[str, Any] = {}
    if error.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if extensions:
        out["extensions"] = extensions
    out["message"] = message
    return out


# --- compiled plans ---------------------------------------------------------------------


# Kinds of compiled fields, for the executor's fast paths. Leaf values in the data are
# plain values (never callables); composite values may be callables taking arguments.
LEAF, TYPENAME, COMPOSITE, CONDITIONAL = 0, 1, 2, 3


class FieldPlan:
    """One response key of one concrete object type."""

    __slots__ = (
        "key", "name", "node", "field_def", "static_args", "selection_nodes", "composite",
        "object_type", "conditions", "_plans", "_compiler", "parent", "_runners",
    )

    def __init__(self, key, name, node, field_def, selection_nodes, composite, object_type, conditions, compiler):
        self.key = key
        self.name = name
        self.node = node
        self.field_def = field_def
        self.selection_nodes = selection_nodes
        self.composite = composite
        self.object_type = object_type  # the return type when it is an object type, else None
        self.conditions = conditions  # @skip/@include directive nodes that need variables
        self._plans: dict[str, list[FieldPlan]] = {}
        self._runners: dict = {}
        self._compiler = compiler
        self.parent = ""
        self.static_args = None
        if field_def is not None and not _uses_variables(node.arguments):
            self.static_args = get_argument_values(field_def, node, {})

    def plans_for(self, typename: str) -> list[tuple]:
        plans = self._plans.get(typename)
        if plans is None:
            plans = self._plans[typename] = self._compiler.compile(typename, self.selection_nodes)
        return plans

    def runner_for(self, typename: str):
        runner = self._runners.get(typename)
        if runner is None:
            runner = self._runners[typename] = make_runner(self.plans_for(typename))
        return runner


def _uses_variables(nodes) -> bool:
    found = False

    class Finder(graphql.language.Visitor):
        def enter_variable(self, *_):
            nonlocal found
            found = True

    for node in nodes or ():
        graphql.visit(node, Finder())
    return found


class _Compiler:
    def __init__(self, schema: GraphQLSchema, fragments: dict):
        self.schema = schema
        self.fragments = fragments
        self.lock = threading.Lock()

    def _applies(self, condition, object_type: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        cond = self.schema.get_type(condition.name.value)
        if cond is object_type:
            return True
        return is_abstract_type(cond) and self.schema.is_sub_type(cond, object_type)

    def _collect(self, object_type, selection_sets, out: OrderedDict, conditions: tuple, seen: set):
        for selection_set in selection_sets:
            for sel in selection_set.selections:
                conds = conditions + _directive_conditions(sel)
                if conds is None:
                    continue
                if isinstance(sel, FieldNode):
                    key = sel.alias.value if sel.alias else sel.name.value
                    out.setdefault(key, []).append((sel, conds))
                elif isinstance(sel, InlineFragmentNode):
                    if self._applies(sel.type_condition, object_type):
                        self._collect(object_type, [sel.selection_set], out, conds, seen)
                elif isinstance(sel, FragmentSpreadNode):
                    name = sel.name.value
                    fragment = self.fragments.get(name)
                    if fragment is None or (name, id(selection_set)) in seen:
                        continue
                    if self._applies(fragment.type_condition, object_type):
                        self._collect(object_type, [fragment.selection_set], out, conds, seen | {(name, id(selection_set))})

    def compile(self, typename: str, selection_sets) -> list[tuple]:
        """[(kind, response key, field name or typename, FieldPlan)] in response order."""
        object_type = self.schema.get_type(typename)
        collected: OrderedDict = OrderedDict()
        self._collect(object_type, selection_sets, collected, (), set())
        plans = []
        for key, entries in collected.items():
            node = entries[0][0]
            name = node.name.value
            # A field is skipped only if every occurrence carries a condition.
            conditions = () if any(not c for _, c in entries) else entries[0][1]
            if name in ("__schema", "__type"):  # answered by graphql-core (see execute)
                plan = FieldPlan(key, name, node, None, [], False, None, conditions, self)
                plans.append((CONDITIONAL, key, name, plan))
                continue
            if name == "__typename":
                plan = FieldPlan(key, name, node, None, [], False, None, conditions, self)
                plan.static_args = typename
                plans.append((CONDITIONAL if conditions else TYPENAME, key, typename, plan))
                continue
            field_def = object_type.fields[name]
            named = get_named_type(field_def.type)
            composite = is_composite_type(named)
            subs = [n.selection_set for n, _ in entries if n.selection_set is not None]
            obj = named if isinstance(named, GraphQLObjectType) else None
            plan = FieldPlan(key, name, node, field_def, subs, composite, obj, conditions, self)
            plan.parent = typename
            kind = CONDITIONAL if conditions else COMPOSITE if composite else LEAF
            plans.append((kind, key, name, plan))
        return plans


def _directive_conditions(sel) -> tuple | None:
    """Literal @skip/@include resolve now (None = drop); variable ones are kept for run time."""
    out = ()
    for directive in sel.directives or ():
        name = directive.name.value
        if name not in ("skip", "include"):
            continue
        arg = directive.arguments[0].value if directive.arguments else None
        if isinstance(arg, graphql.BooleanValueNode):
            if arg.value == (name == "skip"):
                return None
        elif arg is not None:
            out = out + ((name, arg),)
    return out


@dataclass
class ConnectionSpec:
    """A connection field in the query, for GitHub's pagination, node-limit and cost rules."""

    name: str
    path: list[str]
    node: FieldNode
    first: Any
    last: Any
    children: list[ConnectionSpec] = field(default_factory=list)
    list_of_ids: Any = None  # Query.nodes(ids:): as many objects as ids


@dataclass
class PreparedQuery:
    errors: list[dict] | None = None
    operation: OperationDefinitionNode | None = None
    root_plans: list[tuple] | None = None
    connections: list[ConnectionSpec] = field(default_factory=list)
    dry_run_rate_limit: Any = None  # the dryRun value node of a root rateLimit field
    root_runner: Any = None
    document: Any = None
    introspection: bool = False  # asks for __schema or __type


def _is_connection(field_def) -> bool:
    named = get_named_type(field_def.type)
    return named.name.endswith("Connection") and "first" in field_def.args


def _connection_specs(schema, fragments, parent_type, selection_set, path, seen) -> list[ConnectionSpec]:
    specs: list[ConnectionSpec] = []
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            name = sel.name.value
            if name.startswith("__") or not hasattr(parent_type, "fields") or name not in parent_type.fields:
                continue
            field_def = parent_type.fields[name]
            named = get_named_type(field_def.type)
            key = sel.alias.value if sel.alias else name
            children = []
            if sel.selection_set is not None:
                children = _connection_specs(schema, fragments, named, sel.selection_set, path + [key], seen)
            args = {a.name.value: a.value for a in sel.arguments or ()}
            if _is_connection(field_def):
                specs.append(ConnectionSpec(name, path + [key], sel, args.get("first"), args.get("last"), children))
            elif parent_type is schema.query_type and name == "nodes":
                specs.append(ConnectionSpec(name, path + [key], sel, None, None, children, list_of_ids=args.get("ids")))
            else:
                specs.extend(children)
        elif isinstance(sel, InlineFragmentNode):
            target = schema.get_type(sel.type_condition.name.value) if sel.type_condition else parent_type
            specs.extend(_connection_specs(schema, fragments, target, sel.selection_set, path, seen))
        elif isinstance(sel, FragmentSpreadNode):
            fragment = fragments.get(sel.name.value)
            if fragment is None or sel.name.value in seen:
                continue
            target = schema.get_type(fragment.type_condition.name.value)
            specs.extend(_connection_specs(schema, fragments, target, fragment.selection_set, path, seen | {sel.name.value}))
    return specs


def prepare(schema: GraphQLSchema, text: str, operation_name: str | None) -> PreparedQuery:
    try:
        document = graphql.parse(text)
    except graphql.GraphQLError as error:
        return PreparedQuery(errors=[format_graphql_error(error)])
    errors = graphql.validate(schema, document)
    if errors:
        return PreparedQuery(errors=[format_graphql_error(e) for e in errors])
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)}
    if operation_name:
        chosen = [op for op in operations if op.name and op.name.value == operation_name]
        if not chosen:
            return PreparedQuery(errors=[{"message": f"No operation named \"{operation_name}\""}])
        operation = chosen[0]
    elif len(operations) > 1:
        return PreparedQuery(errors=[{"message": "An operation name is required"}])
    else:
        operation = operations[0]
    if operation.operation != graphql.OperationType.QUERY:
        return PreparedQuery(errors=[{
            "message": f"The sandbox is read-only: {operation.operation.value} operations are not supported.",
            "locations": _locations([operation]),
        }])
    compiler = _Compiler(schema, fragments)
    root = compiler.compile(schema.query_type.name, [operation.selection_set])
    prepared = PreparedQuery(operation=operation, root_plans=root, document=document)
    prepared.introspection = any(name in ("__schema", "__type") for _, _, name, _ in root)
    prepared.connections = _connection_specs(schema, fragments, schema.query_type, operation.selection_set, [], frozenset())
    for _, _, _, plan in root:
        if plan.name == "rateLimit":
            for arg in plan.node.arguments or ():
                if arg.name.value == "dryRun":
                    prepared.dry_run_rate_limit = arg.value
    return prepared


class QueryCache:
    """Parsed, validated and compiled queries by (text, operation name), least recently used out."""

    def __init__(self, schema: GraphQLSchema | None = None, size: int = 256):
        self.schema = schema or github_schema()
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, text: str, operation_name: str | None = None) -> PreparedQuery:
        key = (text, operation_name)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry
        entry = prepare(self.schema, text, operation_name)
        with self._lock:
            self.misses += 1
            if self.size <= 0:
                return entry
            self._entries[key] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry


# --- GitHub's rules and cost -------------------------------------------------------------


def coerce_variables(schema: GraphQLSchema, prepared: PreparedQuery, inputs: dict | None) -> dict:
    result = get_variable_values(schema, prepared.operation.variable_definitions or [], inputs or {})
    if isinstance(result, list):
        raise QueryRejected([format_graphql_error(e) for e in result])
    return result


def _int_value(node, variables) -> int | None:
    if node is None:
        return None
    value = graphql.value_from_ast(node, graphql.GraphQLInt, variables)
    return None if value is graphql.Undefined else value


@dataclass
class QueryCost:
    cost: int
    node_count: int
    requests: int


def github_cost(prepared: PreparedQuery, variables: dict) -> QueryCost:
    """Checks GitHub's pagination and node-limit rules; returns the query's cost and node count."""
    totals = {"nodes": 0, "requests": 0}

    def walk(specs: list[ConnectionSpec], parents: int):
        for spec in specs:
            if spec.list_of_ids is not None:
                ids = graphql.value_from_ast(spec.list_of_ids, graphql.GraphQLList(graphql.GraphQLID), variables)
                walk(spec.children, parents * max(1, len(ids or [])))
                continue
            first, last = _int_value(spec.first, variables), _int_value(spec.last, variables)
            if first is None and last is None:
                raise QueryRejected([{
                    "type": "MISSING_PAGINATION_BOUNDARIES",
                    "path": spec.path,
                    "locations": _locations([spec.node]),
                    "message": f"You must provide a `first` or `last` value to properly paginate the `{spec.name}` connection.",
                }])
            for arg, value in (("first", first), ("last", last)):
                if value is not None and value > MAX_PAGE:
                    raise QueryRejected([{
                        "type": "EXCESSIVE_PAGINATION",
                        "path": spec.path,
                        "locations": _locations([spec.node]),
                        "message": f"Requesting {value} records on the `{spec.name}` connection exceeds the `{arg}` limit of {MAX_PAGE} records.",
                    }])
                if value is not None and value < 1:
                    raise QueryRejected([{
                        "type": "EXCESSIVE_PAGINATION",
                        "path": spec.path,
                        "locations": _locations([spec.node]),
                        "message": f"`{arg}` on the `{spec.name}` connection must be between 1 and {MAX_PAGE}, got {value}.",
                    }])
            size = max(v for v in (first, last) if v is not None)
            totals["requests"] += parents
            totals["nodes"] += parents * size
            if totals["nodes"] > NODE_LIMIT:
                raise QueryRejected([{
                    "type": "MAX_NODE_LIMIT_EXCEEDED",
                    "path": spec.path,
                    "locations": _locations([spec.node]),
                    "message": (
                        f"By the time this query traverses to the {spec.name} connection, it is requesting up to "
                        f"{totals['nodes']:,} possible nodes which exceeds the maximum limit of {NODE_LIMIT:,}."
                    ),
                }])
            walk(spec.children, parents * size)

    walk(prepared.connections, 1)
    # GitHub: requests / 100, rounded; at least 1 point.
    cost = max(1, (totals["requests"] + 50) // 100)
    return QueryCost(cost=cost, node_count=totals["nodes"], requests=totals["requests"])


def is_dry_run(prepared: PreparedQuery, variables: dict) -> bool:
    if prepared.dry_run_rate_limit is None:
        return False
    return bool(graphql.value_from_ast(prepared.dry_run_rate_limit, graphql.GraphQLBoolean, variables))


# --- execution -------------------------------------------------------------------------


class ExecutionContext:
    """Per-request state handed to resolvers: variables, errors, and whatever the server adds."""

    def __init__(self, variables: dict, **extra):
        self.variables = variables
        self.errors: list[dict] = []
        self.__dict__.update(extra)

    def included(self, plan: FieldPlan) -> bool:
        for name, node in plan.conditions:
            value = graphql.value_from_ast(node, graphql.GraphQLBoolean, self.variables)
            if bool(value) == (name == "skip"):
                return False
        return True


def execute(prepared: PreparedQuery, root: dict, ctx: ExecutionContext) -> dict:
    """{"data": ..., "errors"?: [...]} in GitHub's key order."""
    if prepared.introspection:
        # Introspection of GitHub's schema, by graphql-core; the sandbox's own fields come from `root`.
        result = graphql.execute(
            github_schema(), prepared.document, root_value=root, variable_values=ctx.variables,
            operation_name=prepared.operation.name.value if prepared.operation.name else None,
            field_resolver=lambda source, info, **args: _introspection_resolver(source, info, args, ctx),
        )
        out = {"data": result.data}
        if result.errors:
            out["errors"] = [format_graphql_error(e) for e in result.errors]
        return out
    if prepared.root_runner is None:
        prepared.root_runner = make_runner(prepared.root_plans)
    data = prepared.root_runner(root, ctx, None)
    out: dict[str, Any] = {"data": data}
    if ctx.errors:
        out["errors"] = ctx.errors
    return out


def _error(ctx, plan, path, message, type_=None):
    entry: dict[str, Any] = {}
    if type_:
        entry["type"] = type_
    entry["path"] = _flatten(path)
    entry["locations"] = _locations([plan.node])
    entry["message"] = message
    ctx.errors.append(entry)


def _run(plans: list[tuple], source: dict, ctx: ExecutionContext, path: tuple) -> dict:
    out = {}
    for kind, key, name, plan in plans:
        if kind == LEAF:
            try:
                out[key] = source[name]
            except KeyError:
                _unsupported(ctx, plan, path)
                out[key] = None
            continue
        if kind == TYPENAME:
            out[key] = name
            continue
        if kind == CONDITIONAL:
            if not ctx.included(plan):
                continue
            if plan.field_def is None:
                out[key] = plan.static_args
                continue
        try:
            value = source[name]
        except KeyError:
            _unsupported(ctx, plan, path)
            out[key] = None
            continue
        if callable(value):
            args = plan.static_args
            if args is None:
                args = get_argument_values(plan.field_def, plan.node, ctx.variables)
            try:
                value = value(args, ctx)
            except FieldError as error:
                _error(ctx, plan, (path, key), error.message, error.type)
                value = None
        if value is not None and plan.composite:
            static = plan.object_type
            here = (path, key)
            if type(value) is list:
                if static is not None:
                    sub = plan.plans_for(static.name)
                    value = [None if item is None else _run(sub, item, ctx, (here, i)) for i, item in enumerate(value)]
                else:
                    value = [
                        None if item is None else _run(plan.plans_for(item["__typename"]), item, ctx, (here, i))
                        for i, item in enumerate(value)
                    ]
            else:
                sub = plan.plans_for(static.name if static is not None else value["__typename"])
                value = _run(sub, value, ctx, here)
        out[key] = value
    return out


def _flatten(path) -> list:
    """Paths are built as cheap (parent, key) pairs and flattened only for errors."""
    keys = []
    while path is not None:
        path, key = path
        keys.append(key)
    return keys[::-1]


def _unsupported(ctx, plan, path):
    _error(ctx, plan, (path, plan.key), f"The sandbox does not implement {plan.parent}.{plan.name}.",
           "SANDBOX_UNSUPPORTED_FIELD")


# --- generated runners -----------------------------------------------------------------
#
# The fast path: for each compiled selection, a generated function that builds the response
# object as one dict literal (`{"id": src["id"], ...}`), several times faster than looping
# over plans. Anything unusual (a missing field, run-time @skip/@include) falls back to `_run`,
# which reports errors with paths.


def make_runner(plans: list[tuple]):
    if any(kind == CONDITIONAL for kind, _, _, _ in plans):
        return lambda src, ctx, path: _run(plans, src, ctx, path)
    env: dict[str, Any] = {"_run": _run, "_plans": plans}
    lines = ["def runner(src, ctx, path):", "    mark = len(ctx.errors)", "    try:", "        return {"]
    for i, (kind, key, name, plan) in enumerate(plans):
        if kind == LEAF:
            lines.append(f"            {key!r}: src[{name!r}],")
        elif kind == TYPENAME:
            lines.append(f"            {key!r}: {name!r},")
        else:
            env[f"c{i}"] = _composite(plan)
            lines.append(f"            {key!r}: c{i}(src[{name!r}], ctx, path),")
    lines += [
        "        }",
        "    except KeyError:",
        "        del ctx.errors[mark:]",
        "        return _run(_plans, src, ctx, path)",
    ]
    exec("\n".join(lines), env)  # noqa: S102 - the text is built from validated GraphQL names only
    return env["runner"]


def _composite(plan: FieldPlan):
    key = plan.key
    static = plan.object_type
    static_args = plan.static_args

    def complete(value, ctx, path):
        if callable(value):
            args = static_args
            if args is None:
                args = get_argument_values(plan.field_def, plan.node, ctx.variables)
            try:
                value = value(args, ctx)
            except FieldError as error:
                _error(ctx, plan, (path, key), error.message, error.type)
                return None
        if value is None:
            return None
        here = (path, key)
        if type(value) is list:
            if static is not None:
                run = plan.runner_for(static.name)
                return [None if item is None else run(item, ctx, (here, i)) for i, item in enumerate(value)]
            return [
                None if item is None else plan.runner_for(item["__typename"])(item, ctx, (here, i))
                for i, item in enumerate(value)
            ]
        return plan.runner_for(static.name if static is not None else value["__typename"])(value, ctx, here)

    return complete


def _introspection_resolver(source, info, args, ctx):
    value = source.get(info.field_name) if isinstance(source, dict) else getattr(source, info.field_name, None)
    return value(args, ctx) if callable(value) else value
