from ebpftop.cli import main

raise SystemExit(main())
