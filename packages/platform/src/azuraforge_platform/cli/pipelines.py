"""`azuraforge pipelines list|show`: what is installed, what could be, and each config."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from azuraforge_pipeline import applications, discover
from azuraforge_platform.cli.common import console, fail, user_errors

__all__ = ["register"]

pipelines_app = typer.Typer(help="Installed pipelines and the official catalog.")


@pipelines_app.command("list")
def list_command() -> None:
    """Official apps (installed or not) and every installed pipeline."""
    registry = discover()
    table = Table()
    for column in ("id", "name", "version", "installed", "category", "package"):
        table.add_column(column, no_wrap=column in ("id", "version", "installed"))
    for row in applications(registry):
        table.add_row(
            row.id,
            escape(row.name),
            row.version or "-",
            "[green]yes[/]" if row.installed else "[dim]no[/]",
            row.category,
            row.package or "-",
        )
    out = console()
    out.print(table)
    for error in registry.errors:
        out.print(
            f"[red]plugin {escape(error.name)} ({escape(error.target)}) failed to load:[/] "
            f"{escape(error.error)}"
        )


def _constraints(prop: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in prop:
            parts.append(f"{label} {prop[key]}")
    if "enum" in prop:
        parts.append("one of " + ", ".join(map(str, prop["enum"])))
    if "pattern" in prop:
        parts.append(f"matches {prop['pattern']}")
    return ", ".join(parts)


def _type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " | ".join(_type_of(p, defs) for p in prop["anyOf"])
    if prop.get("type") == "array" and "items" in prop:
        return f"list[{_type_of(prop['items'], defs)}]"
    return str(prop.get("type", "any"))


@pipelines_app.command("show")
def show_command(
    pipeline_id: Annotated[str, typer.Argument(help="Pipeline id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print describe() as JSON.")] = False,
) -> None:
    """A pipeline's description, config schema and defaults."""
    registry = discover()
    out = console()
    if pipeline_id not in registry:
        for app in applications(registry):
            if app.id == pipeline_id:  # official but not installed
                out.print(f"[bold]{escape(app.name)}[/] ({app.id}): {escape(app.description)}")
                fail(f"{app.id} is not installed; install it with: pip install {app.package}")
    with user_errors():
        pipeline = registry.get(pipeline_id)
    info = pipeline.describe()
    if as_json:
        out.print_json(json.dumps(info))
        return
    out.print(f"[bold]{escape(pipeline.name)}[/] ({pipeline.id}) version {pipeline.version}")
    if pipeline.description:
        out.print(escape(pipeline.description))
    schema = info["config_schema"]
    defaults = info["default_config"]
    required = set(schema.get("required", []))
    table = Table(title="config", title_justify="left")
    for column in ("field", "type", "default", "constraints", "description"):
        table.add_column(column, no_wrap=column == "field")
    for field, prop in schema.get("properties", {}).items():
        default = (
            "[bold]required[/]"
            if field in required
            else escape(json.dumps(defaults.get(field)))
            if field in defaults
            else "-"
        )
        table.add_row(
            field,
            escape(_type_of(prop, schema.get("$defs", {}))),
            default,
            escape(_constraints(prop)),
            escape(prop.get("description", "")),
        )
    out.print(table)
    out.print("defaults:")
    out.print_json(json.dumps(defaults))
    out.print(f"run it: azuraforge run {pipeline.id} --set key=value ...")


def register(app: typer.Typer) -> None:
    app.add_typer(pipelines_app, name="pipelines", no_args_is_help=True)
