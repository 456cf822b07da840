"""The `azuraforge` command line (typer + rich); the root app is `cli.app.app`."""
