from dhtviewer.cli import main

raise SystemExit(main())
