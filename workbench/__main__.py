from workbench.ui.cli import main

raise SystemExit(main())
