"""`python -m azuraforge_platform.cli` is `azuraforge`."""

from azuraforge_platform.cli.app import main

main()
