from topom_client.exporter.cli import main

raise SystemExit(main())
