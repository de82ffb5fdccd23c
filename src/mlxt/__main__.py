from mlxt.cli import main

raise SystemExit(main())
