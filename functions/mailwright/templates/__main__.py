"""`python -m mailwright.templates bundle SOURCE_DIR OUTPUT_DIR`."""

from mailwright.templates import main

raise SystemExit(main())
