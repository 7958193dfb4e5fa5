"""`python -m klaviyo_source` runs the CLI."""

from klaviyo_source.cli import main

raise SystemExit(main())
