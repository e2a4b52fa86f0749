from rnnserve_cli.main import main

raise SystemExit(main())
