from syncdash.cli.main import main

raise SystemExit(main())
