"""`python -m humanseg ...` runs the CLI."""
from humanseg.cli import main

raise SystemExit(main())
