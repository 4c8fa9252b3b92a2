"""``python -m cartrecovery.local``: run the local stack in the foreground (what ``make run`` does)."""

from cartrecovery.local.server import main

raise SystemExit(main())
